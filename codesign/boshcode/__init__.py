"""BOSHCODE: co-design of a transformer and its target (edge device or accelerator).

EdgeTran paper Sec. III-C and TransCODE Sec. III-C. The torch-free foundations:

* ``representation``: a continuous, scaled architecture representation with an exact
  nearest-valid projection (the paper's 37-d index embedding stays in
  :mod:`codesign.embedding`);
* ``targets``: the target-space interface and the one-hot device space;
* ``objective``: Eq. 1 with fixed maxima, user weights, hard constraints and P_MIN;
* ``pareto``: the non-dominated set and its exact hypervolume.
"""
