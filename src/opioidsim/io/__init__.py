"""Input/output: results folders (NetCDF + summary + report + scenario + run record)."""
from opioidsim.io.results import RESULT_FILES, check_out_dir, package_version, write_results

__all__ = ["RESULT_FILES", "check_out_dir", "package_version", "write_results"]
