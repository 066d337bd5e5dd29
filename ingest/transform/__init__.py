"""Transformations of vendor usage files into the generic rated usage format.

- :mod:`ingest.transform.openet` — delimited rated events, mapped by a declarative
  field-mapping profile (``ingest/profiles/openet-default.yaml``);
- :mod:`ingest.transform.ocs` — 3GPP TS 32.291 ``ChargingDataRequest`` JSON lines
  (``ingest/profiles/ocs-default.yaml``);
- :mod:`ingest.transform.common` — the result both return and
  :func:`~ingest.transform.common.write_outputs`, which writes the generic file and
  its error file atomically.

The functions are pure apart from reading profiles and writing outputs: the
daemons decide which files to read and where the results go.
"""
