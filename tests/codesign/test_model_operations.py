"""What each head operation computes, checked against independent references (FFT, scipy DCT, explicit loops)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
scipy_fft = pytest.importorskip("scipy.fft")

from codesign.architecture import Architecture  # noqa: E402
from codesign.models.build import build_model  # noqa: E402
from codesign.models.config import ModelConfig  # noqa: E402
from codesign.models.operations import DynamicConvolutionGroup, LinearTransformGroup, SelfAttentionGroup  # noqa: E402

B, N, H = 2, 11, 24  # batch, tokens, layer width


def inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, H, generator=gen)
    mask = torch.ones(B, N)
    mask[1, 7:] = 0
    return x, mask, (1.0 - mask) * -10000.0


def randomise(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


@pytest.mark.parametrize("op", ["l_dft", "l_dct"])
def test_linear_transform_equals_fft_reference(op):
    group = LinearTransformGroup(H, 6, 2, op).eval()
    randomise(group, 1)
    x, mask, bias = inputs()
    out = group(x, mask, bias).detach().numpy().reshape(B, N, 2, 6)
    value = (group.value(x) * mask[:, :, None]).detach().numpy().astype(np.float64).reshape(B, N, 2, 6)
    if op == "l_dft":  # FNet: real part of the 2-D DFT (sequence x features), unitary scaling
        want = np.real(np.fft.fft2(value, axes=(1, 3))) / math.sqrt(N * 6)
    else:
        want = scipy_fft.dctn(value, type=2, axes=(1, 3), norm="ortho")
    np.testing.assert_allclose(out, want, atol=2e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_self_attention_equals_explicit_softmax(weighted):
    group = SelfAttentionGroup(H, 8, 3, weighted=weighted, dropout=0.0).eval()
    randomise(group, 2)
    x, mask, bias = inputs()
    out = group(x, mask, bias).detach().numpy()
    q, k, v = (m(x).detach().numpy().reshape(B, N, 3, 8) for m in (group.query, group.key, group.value))
    w = group.w_a.detach().numpy() if weighted else np.stack([np.eye(8)] * 3)
    want = np.zeros((B, N, 3, 8))
    for b in range(B):
        keys = mask[b].numpy() > 0
        for h in range(3):
            scores = q[b, :, h] @ w[h] @ k[b, keys, h].T / math.sqrt(8)
            probs = np.exp(scores - scores.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            want[b, :, h] = probs @ v[b, keys, h]
    np.testing.assert_allclose(out.reshape(B, N, 3, 8), want, atol=2e-5)


def test_wma_with_identity_equals_sdp():
    sdp = SelfAttentionGroup(H, 8, 2, weighted=False, dropout=0.0).eval()
    wma = SelfAttentionGroup(H, 8, 2, weighted=True, dropout=0.0).eval()
    randomise(sdp, 3)
    wma.load_state_dict({**sdp.state_dict(), "w_a": torch.eye(8).repeat(2, 1, 1)})
    x, mask, bias = inputs()
    torch.testing.assert_close(wma(x, mask, bias), sdp(x, mask, bias))
    with torch.no_grad():
        wma.w_a.mul_(2.0)
    assert not torch.allclose(wma(x, mask, bias), sdp(x, mask, bias))


@pytest.mark.parametrize("op, kernel", [("c_5", 5), ("c_9", 9), ("c_13", 13)])
def test_dynamic_convolution_equals_explicit_loop(op, kernel):
    group = DynamicConvolutionGroup(H, 4, 2, op, dropout=0.0).eval()
    randomise(group, 4)
    x, mask, bias = inputs()
    out = group(x, mask, bias).detach().numpy().reshape(B, N, 2, 4)
    m = mask.numpy()[:, :, None]
    q = group.query(x).detach().numpy()
    key_in = group.key(x).detach().numpy() * m
    v = group.value(x).detach().numpy() * m
    w_conv = group.key_conv.weight.detach().numpy()[:, 0, :]  # channels x k
    b_conv = group.key_conv.bias.detach().numpy()
    half = kernel // 2
    key = np.zeros_like(key_in)
    for t in range(N):  # depthwise convolution over the sequence, zero padding (cross-correlation, as torch)
        for j in range(kernel):
            s = t + j - half
            if 0 <= s < N:
                key[:, t] += key_in[:, s] * w_conv[:, j]
    key += b_conv
    gate = (q * key).reshape(B, N, 2, 4)
    logits = np.einsum("bnhd,hdk->bnhk", gate, group.span_weight.detach().numpy()) + group.span_bias.detach().numpy()
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    vv = v.reshape(B, N, 2, 4)
    want = np.zeros((B, N, 2, 4))
    for t in range(N):
        for j in range(kernel):
            s = t + j - half
            if 0 <= s < N:
                want[:, t] += weights[:, t, :, j : j + 1] * vv[:, s]
    np.testing.assert_allclose(out, want, atol=2e-5)


ALL_OPS = {"l": 2, "o": [["sa_sdp_8", "sa_wma_8", "l_dft_8", "l_dct_8"], ["c_5_8", "c_9_8", "c_13_8", "sa_sdp_8"]], "h": [32, 24], "f": [[64], [48, 32]]}


@pytest.mark.parametrize("task", ["classify", "mlm"])
def test_padding_content_never_reaches_real_tokens(task):
    model = build_model(Architecture.from_dict(ALL_OPS), task, config=ModelConfig(vocab_size=100, max_positions=16), seed=5)
    ids = torch.randint(5, 100, (2, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[:, 8:] = 0
    types = torch.zeros_like(ids)
    other = ids.clone()
    other[:, 8:] = torch.randint(5, 100, (2, 4), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = model(ids, mask, types), model(other, mask, types)
    if task == "mlm":
        a, b = a[:, :8], b[:, :8]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_seeds_reproduce_weights_and_differ_between_seeds():
    arch = Architecture.from_dict(ALL_OPS)
    config = ModelConfig(vocab_size=100, max_positions=16)
    one, same, other = (build_model(arch, "mlm", config=config, seed=s) for s in (7, 7, 8))
    for (name, p), q, r in zip(one.state_dict().items(), same.state_dict().values(), other.state_dict().values()):
        assert torch.equal(p, q), name
    assert not torch.equal(one.encoder.layers[0].output.weight, other.encoder.layers[0].output.weight)


def test_mlm_decoder_is_tied_to_token_embeddings():
    arch = Architecture.from_dict(ALL_OPS)
    model = build_model(arch, "mlm", config=ModelConfig(vocab_size=100, max_positions=16))
    ids = torch.randint(5, 100, (1, 6))
    token = 42
    with torch.no_grad():
        model.decoder_bias.fill_(0.25)
        model.encoder.embeddings.word.weight[token] = 0.0  # the decoder row of `token` is this embedding
        logits = model(ids, torch.ones_like(ids), torch.zeros_like(ids))
    torch.testing.assert_close(logits[..., token], torch.full((1, 6), 0.25))
    assert (logits[..., token + 1] - 0.25).abs().max() > 1e-3
    assert model.transform.weight.shape == (32, 24)  # h_last -> h_0, so the tie holds across widths


def test_dropout_only_in_training():
    model = build_model(Architecture.from_dict(ALL_OPS), "classify", config=ModelConfig(vocab_size=100, max_positions=16, dropout=0.5))
    ids = torch.randint(5, 100, (2, 8))
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    with torch.no_grad():
        assert torch.equal(model(*args), model(*args))
        model.train()
        assert not torch.equal(model(*args), model(*args))
