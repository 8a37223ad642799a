"""Heterogeneous FlexiBERT 2.0 transformer models (host side: needs torch).

* ``catalog``: the operation names, kernel sizes and per-head parameter counts (torch-free);
* ``operations``: the seven head operations (SA-SDP, SA-WMA, LT-DFT, LT-DCT, DSC-5/9/13);
* ``transforms``: the precomputed DFT/DCT matrices of the linear-transform heads;
* ``encoder``: embeddings and heterogeneous encoder layers;
* ``heads``: MLM pre-training and sequence-classification heads;
* ``build``: seeded construction from an ``Architecture``;
* ``params``: parameter counts by formula (torch-free);
* ``files``: model dictionaries and checkpoint names (torch-free);
* ``checkpoint``: saving and loading models;
* ``pretrain``: masked-language-model training on the corpus;
* ``finetune``: sequence-classification training on GLUE-format tasks.
"""
