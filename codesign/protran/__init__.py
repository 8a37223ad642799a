"""ProTran: hardware-performance surrogates and active-learning profiling (EdgeTran Sec. III-B).

Modules:

* ``measures``: the three measures (latency s/seq, energy J/seq, peak power W) and the
  measurement record every evaluator returns;
* ``features``: inputs of the surrogates: the 37-d index embedding alone (as in the
  paper) or with derived workload features (FLOPs, parameters, bytes moved per layer and
  per operation type at a device's sequence length and batch);
* ``surrogates``: seven regressors behind one interface (mean and standard deviation,
  JSON save/load that runs no code);
* ``calibration``: error, coverage and ranking metrics;
* ``evaluators``: the ``Evaluator`` protocol and the published-pool evaluator;
* ``campaign_store``: a campaign in the one EdgeTran store (resume without repeating evaluations);
* ``loop``: the active-learning loop of Fig. 6;
* ``comparison``: validation MSE against samples per regressor (Fig. 7) and held-out
  error with and without workload features;
* ``accuracy``: the GLUE-score surrogate with ranking metrics (Sec. IV-A3);
* ``report``: figures (Figs. 7, 8, 13, 14) and the Table VI summary;
* ``cli``: the ``edgetran protran`` commands.
"""
