"""A small bundled English corpus, a generated GLUE-format task, loaders and a WordPiece tokenizer.

* ``text``: the bundled public-domain / project-written corpus and MLM windows over it;
* ``tokenizer``: BERT's WordPiece encoding with a vocabulary trained on the corpus;
* ``task``: the generated sentiment task (GLUE SST-2 layout, ``sentence<TAB>label``);
* ``glue``: loaders of GLUE-format TSV files (the bundled task or a user's GLUE folder).

Pure Python and numpy: no torch.
"""
