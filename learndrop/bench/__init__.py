"""``python -m learndrop bench``: Learn&Drop measured against the baseline on real data.

- ``pairs``: the scenarios' pairs (a model on a data set with shared hyper-parameters), ``custom_pair``;
- ``running``: a pair's data loaded once, its pre-training once, each run recorded with its peak memory;
- ``side_by_side``: the baseline and Learn&Drop with the same seed and data order (``bench``);
- ``frontier``: every policy against the baseline trained for fewer epochs (``bench --frontier``);
- ``report``: the frontier's tables, figures and leave-one-pair-out table.
"""
