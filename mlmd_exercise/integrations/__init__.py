"""Recording what other libraries do, with no tracking code in the script: `mx.autolog()`
(sklearn.py) records every scikit-learn fit as a run, with the data it read (data.py: data in
memory fingerprinted by content, and the files pandas read it from); `MlmdLogger`
(lightning.py) records every PyTorch Lightning fit it is the logger of; `with
lightgbm.record(...) as callback` (lightgbm.py) records LightGBM trains given that callback.

Nothing is imported here: each integration imports its library itself, when it is turned on.
"""
