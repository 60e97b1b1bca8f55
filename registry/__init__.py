"""The fleet registry: who and what each vehicle is.

Fleets, vehicle models (with the parameters detectors need), service centres, owners (the only
personal data, in one table) and vehicles, imported from TOML or CSV files (`fleet registry
import`) and exported back (`fleet registry export`). The software each vehicle runs is not here:
vehicles report it in their check-in, and ingest keeps it (`vehicle_software`).
Owns: the record rules (`records`), the file shapes (`files`) and the SQL (`store`). Imports only
`contract`.
"""

from registry.files import RawRow, RegistryFileError, read_registry_file, write_csv, write_toml
from registry.records import BY_KIND, KINDS, Fleet, Owner, Record, ServiceCentre, Vehicle, VehicleModel
from registry.store import ImportReport, RowProblem, export_rows, import_records, import_rows

__all__ = [
    "BY_KIND",
    "KINDS",
    "Fleet",
    "ImportReport",
    "Owner",
    "RawRow",
    "Record",
    "RegistryFileError",
    "RowProblem",
    "ServiceCentre",
    "Vehicle",
    "VehicleModel",
    "export_rows",
    "import_records",
    "import_rows",
    "read_registry_file",
    "write_csv",
    "write_toml",
]
