"""Calibration: fit chosen model parameters to observed readouts (issue 7).

    from opioidsim.calibration import calibrate
    result = calibrate("acute-heroin-iv", "data.csv", ["morphine_clearance", "morphine_volume"])
    print(result.table())

See `fit.calibrate` (the fit), `data.read_observations` (the CSV format) and `forward` (the
differentiable forward model). Research and teaching only: never a dosing guide.
"""
from .data import CalibrationDataError, Observations, observations_from_arrays, read_observations
from .fit import CalibrationError, CalibrationResult, calibrate, default_bounds

__all__ = ["CalibrationDataError", "CalibrationError", "CalibrationResult", "Observations", "calibrate",
           "default_bounds", "observations_from_arrays", "read_observations"]
