"""Crime forecasting with built-in, published accuracy (issue #13).

Database-free: models fit on a :class:`~crossbeat.forecast.history.History` (the viewer's
policy-filtered incidents as metric coordinates and time ranges) and predict a risk per
cell of a :class:`~crossbeat.forecast.grid.SquareGrid` for a window. Every model has the
same interface (:class:`~crossbeat.forecast.models.Model`); rolling-origin backtests
(:mod:`crossbeat.forecast.backtest`) score them with PAI, PEI, hit rate and calibration
(:mod:`crossbeat.forecast.metrics`); :mod:`crossbeat.forecast.nij` applies the 2017 NIJ
Real-Time Crime Forecasting Challenge rules and writes submission-style files.
"""
