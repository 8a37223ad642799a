"""Search and co-design: the FlexiBERT 2.0 design space, embeddings, sampling and published data.

Later: transformer models, ProTran surrogates, BOSHCODE, GPTran, EdgeBERT. The design-space
modules (architecture, design_space, embedding, sampling, diversity, published) are pure
data and numpy: no torch.
"""
