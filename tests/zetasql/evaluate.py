"""Run BigQuery queries on ZetaSQL's reference engine over given tables; runs inside the
zetasql virtualenv (tests/zetasql/harness.py).

Reads a JSON object from stdin:
  {"tables": {"name": {"columns": [[column, bigquery_type], ...], "rows": [[value, ...]]}},
   "queries": [{"sql": "SELECT ...", "tables": ["name", ...]}]}
Values: JSON scalars; DATE and TIMESTAMP as ISO strings, NUMERIC as a decimal string,
ARRAY as a list, STRUCT as a list of its field values. Every table is one name in the root
catalog (the reference engine only fills root tables), so a query names each as one
backquoted identifier. Writes [{"ok", "error", "columns", "rows"}, ...], one per query,
with values in the same encoding (FLOAT64 and NUMERIC as JSON numbers).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from analyze import Session, install_fast_memory_access, install_module_cache  # noqa: E402

EPOCH = dt.date(1970, 1, 1)
NUMERIC_SCALE = 10**9


def to_value(kind, value, out) -> None:
    """Fill the ValueProto `out` with `value` of the zetasql Type proto `kind`."""
    from zetasql.wasi._pb2.zetasql.public import type_pb2 as tp

    if value is None:
        return  # an empty ValueProto is NULL
    k = kind.type_kind
    if k == tp.TYPE_INT64:
        out.int64_value = int(value)
    elif k == tp.TYPE_DOUBLE:
        out.double_value = float(value)
    elif k == tp.TYPE_STRING:
        out.string_value = value
    elif k == tp.TYPE_BOOL:
        out.bool_value = bool(value)
    elif k == tp.TYPE_DATE:
        out.date_value = (dt.date.fromisoformat(value) - EPOCH).days
    elif k == tp.TYPE_TIMESTAMP:
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        micros = round((moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).total_seconds() * 1e6)
        out.timestamp_value.seconds = micros // 1_000_000
        out.timestamp_value.nanos = (micros % 1_000_000) * 1000
    elif k == tp.TYPE_NUMERIC:
        scaled = int(decimal.Decimal(value) * NUMERIC_SCALE)
        size = max(1, (scaled.bit_length() + 8) // 8)
        out.numeric_value = scaled.to_bytes(size, "little", signed=True)
    elif k == tp.TYPE_ARRAY:
        out.array_value.SetInParent()
        for element in value:
            to_value(kind.array_type.element_type, element, out.array_value.element.add())
    elif k == tp.TYPE_STRUCT:
        out.struct_value.SetInParent()
        for field, element in zip(kind.struct_type.field, value, strict=True):
            to_value(field.field_type, element, out.struct_value.field.add())
    else:
        raise ValueError(f"unsupported input type kind {k}")


def from_value(kind, value):
    """A ValueProto of Type proto `kind` -> the JSON encoding."""
    from zetasql.wasi._pb2.zetasql.public import type_pb2 as tp

    which = value.WhichOneof("value")
    if which is None:
        return None
    k = kind.type_kind
    if k == tp.TYPE_DATE:
        return (EPOCH + dt.timedelta(days=value.date_value)).isoformat()
    if k == tp.TYPE_TIMESTAMP:
        ts = value.timestamp_value
        moment = dt.datetime.fromtimestamp(ts.seconds, dt.UTC)
        return (moment + dt.timedelta(microseconds=ts.nanos // 1000)).isoformat()
    if k in (tp.TYPE_NUMERIC, tp.TYPE_BIGNUMERIC):
        raw = value.numeric_value if k == tp.TYPE_NUMERIC else value.bignumeric_value
        scale = NUMERIC_SCALE if k == tp.TYPE_NUMERIC else 10**38
        return float(decimal.Decimal(int.from_bytes(raw, "little", signed=True)) / scale)
    if k == tp.TYPE_ARRAY:
        return [from_value(kind.array_type.element_type, e) for e in value.array_value.element]
    if k == tp.TYPE_STRUCT:
        return [
            from_value(f.field_type, e)
            for f, e in zip(kind.struct_type.field, value.struct_value.field, strict=True)
        ]
    return getattr(value, which)


def evaluate(session: Session, tables: dict, query: dict) -> dict:
    from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2 as pb

    session.tables.clear()
    session.paths.clear()
    for name in query["tables"]:
        table = tables[name]
        types = session.column_types(table["columns"])
        session.add_table(name, [(c[0], t) for c, t in zip(table["columns"], types, strict=True)])
        session.paths[(name,)] = tuple(name.lower().split("."))
    request = pb.PrepareQueryRequest()
    request.sql = query["sql"]
    request.options.CopyFrom(session.options.to_proto())
    request.simple_catalog.CopyFrom(session.build_catalog().to_proto())
    for name in query["tables"]:
        content = request.table_content[name]
        content.table_data.SetInParent()
        types = {t.name: t.type for t in session.tables[tuple(name.lower().split("."))]}
        columns = [types[c[0]].to_proto() for c in tables[name]["columns"]]
        for row in tables[name]["rows"]:
            out = content.table_data.row.add()
            for kind, value in zip(columns, row, strict=True):
                to_value(kind, value, out.cell.add())
    call = session.service.wasm_client.call_grpc_func
    try:
        prepared = call("ZetaSqlLocalService_PrepareQuery", request, pb.PrepareQueryResponse)
    except Exception as exc:
        return {"ok": False, "error": f"prepare: {exc}", "columns": [], "rows": []}
    state = prepared.prepared
    try:
        run = pb.EvaluateQueryRequest(prepared_query_id=state.prepared_query_id)
        response = call("ZetaSqlLocalService_EvaluateQuery", run, pb.EvaluateQueryResponse)
    except Exception as exc:
        return {"ok": False, "error": f"evaluate: {exc}", "columns": [], "rows": []}
    finally:
        done = pb.UnprepareQueryRequest(prepared_query_id=state.prepared_query_id)
        from google.protobuf import empty_pb2

        call("ZetaSqlLocalService_UnprepareQuery", done, empty_pb2.Empty)
    kinds = [c.type for c in state.columns]
    rows = [
        [from_value(k, v) for k, v in zip(kinds, row.cell, strict=True)]
        for row in response.content.table_data.row
    ]
    return {"ok": True, "error": "", "columns": [c.name for c in state.columns], "rows": rows}


def main() -> None:
    install_module_cache(Path(os.environ["ZETASQL_MODULE_CACHE"]))
    install_fast_memory_access()
    request = json.load(sys.stdin)
    session = Session()
    results = [evaluate(session, request["tables"], q) for q in request["queries"]]
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
