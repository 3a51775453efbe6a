"""Analyse BigQuery statements with ZetaSQL; runs inside the zetasql virtualenv.

Reads a JSON object from stdin:
  {"functions": [{"name": "mozfun.x.y", "signatures": [[[arg_type, ...], return_type]]}],
   "runs": {"name": [entry, ...]}}
where an entry is a line of the warehouse SQL log (jetstream/warehouse/sql_log.py):
{"kind": "sql", "sql": script, "params": {name: bigquery_type}} (its query parameters are
declared with those types) or {"kind": "load", "table": name, "columns": {col: type}}.
Writes {"name": [{"sql", "ok", "error"}, ...]} to stdout, one result per statement (a
script is split into its statements). Each run starts from an empty catalog; entries are
analysed in order: a load declares its table, a successful CREATE TABLE / VIEW adds its
columns, so later statements read them. A table is found under any name that ends with
its own (`mozdata.telemetry.events` finds the loaded `telemetry.events`).

The compiled WASM module is cached (wasmtime Module.serialize) in the directory named by
ZETASQL_MODULE_CACHE, keyed by the zetasql and wasmtime versions.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def install_module_cache(cache_dir: Path) -> None:
    """Make zetasql load its compiled module from cache_dir (compile + store once)."""
    from importlib.metadata import version

    import wasmtime
    from zetasql.core import wasm_client

    key = f"zetasql-{version('zetasql')}-wasmtime-{version('wasmtime')}.cwasm"
    cached = cache_dir / key
    real_module = wasmtime.Module

    class CachedModule:
        @staticmethod
        def from_file(engine: wasmtime.Engine, path: str) -> wasmtime.Module:
            if cached.exists():
                try:
                    return real_module.deserialize_file(engine, str(cached))
                except Exception as exc:  # stale or truncated cache: rebuild it
                    print(f"zetasql module cache unusable ({exc}); recompiling", file=sys.stderr)
            module = real_module.from_file(engine, path)
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(module.serialize())
            tmp.replace(cached)
            return module

    wasm_client.Module = CachedModule  # type: ignore[attr-defined]


def install_fast_memory_access() -> None:
    """zetasql copies requests and responses byte by byte in Python; copy them whole."""
    import ctypes

    from zetasql.core.wasm_client import WasmClient

    def base(self) -> int:  # the module's memory is shared: a ctypes pointer to its start
        return ctypes.addressof(self.memory.data_ptr().contents)

    def write_bytes(self, ptr: int, data: bytes) -> None:
        ctypes.memmove(base(self) + ptr, data, len(data))

    def read_bytes(self, ptr: int, size: int) -> bytes:
        return ctypes.string_at(base(self) + ptr, size)

    WasmClient.write_bytes = write_bytes  # type: ignore[method-assign]
    WasmClient.read_bytes = read_bytes  # type: ignore[method-assign]


def with_fields(function, **changes):
    """A copy of a ProtoModel with some fields replaced."""
    import copy

    out = copy.deepcopy(function)
    for key, value in changes.items():
        setattr(out, key, value)
    return out


def quote(name: str) -> str:
    return "`" + name.replace("`", "") + "`"


class Session:
    """A catalog that grows as the statements run, and the analyzer options."""

    def __init__(self) -> None:
        from zetasql.core.local_service import ZetaSqlLocalService
        from zetasql.types import (
            AnalyzerOptions,
            LanguageOptions,
            ProductMode,
            ZetaSQLBuiltinFunctionOptions,
        )

        self.service = ZetaSqlLocalService.get_instance()
        language = LanguageOptions.maximum_features()
        language.product_mode = ProductMode.PRODUCT_EXTERNAL
        self.options = AnalyzerOptions(language_options=language, allow_undeclared_parameters=True)
        self.builtins = ZetaSQLBuiltinFunctionOptions(language_options=language)
        self.tables: dict[tuple[str, ...], list] = {}  # dotted name parts -> SimpleColumns
        self.paths: dict[tuple[str, ...], tuple[str, ...]] = {}  # path as written -> table
        self.functions: list = []
        self._catalog: int | None = None  # the registered catalog, while still complete
        self._options_proto = self.options.to_proto()
        self._language_proto = language.to_proto()

    # -- catalog ---------------------------------------------------------------------------

    def column_types(self, columns: list[list[str]]) -> list:
        """BigQuery type spellings -> zetasql Types (through a CREATE TABLE analysis)."""
        if not columns:
            return []
        ddl = ", ".join(f"{quote(name)} {kind}" for name, kind in columns)
        stmt = self.service.analyze(
            sql_statement=f"CREATE TABLE _types ({ddl})", options=self.options
        ).resolved_statement
        return [c.type for c in stmt.column_definition_list]

    def add_table(self, name: str, columns: list[tuple[str, object]]) -> None:
        from zetasql.types import SimpleColumn

        key = tuple(name.lower().split("."))
        new = [SimpleColumn(name=n, type=t, is_writable_column=True) for n, t in columns]
        if self.tables.get(key) != new:
            self.tables[key] = new
            if key in self.paths.values():
                self._invalidate()

    def add_function(self, name: str, signatures: list[tuple[list[str], str]]) -> None:
        from zetasql.api.builders.function_builder import FunctionBuilder
        from zetasql.types import (
            FunctionArgumentType,
            FunctionArgumentTypeOptions,
            FunctionEnums,
            FunctionSignature,
            SignatureArgumentKind,
        )

        def argument(kind: str, t=None) -> FunctionArgumentType:
            options = FunctionArgumentTypeOptions(
                cardinality=FunctionEnums.ArgumentCardinality.REQUIRED
            )
            if kind in TEMPLATES:
                return FunctionArgumentType(
                    kind=TEMPLATES[kind], options=options, num_occurrences=1
                )
            return FunctionArgumentType(
                kind=SignatureArgumentKind.ARG_TYPE_FIXED,
                type=t,
                options=options,
                num_occurrences=1,
            )

        TEMPLATES = {
            "ANY_1": SignatureArgumentKind.ARG_TYPE_ANY_1,
            "ANY_2": SignatureArgumentKind.ARG_TYPE_ANY_2,
            "ARRAY_ANY_1": SignatureArgumentKind.ARG_ARRAY_TYPE_ANY_1,
            "ARBITRARY": SignatureArgumentKind.ARG_TYPE_ARBITRARY,
        }
        builder = FunctionBuilder("x")
        for args, returns in signatures:
            fixed = [k for k in [*args, returns] if k not in TEMPLATES]
            types = iter(self.column_types([[f"c{i}", k] for i, k in enumerate(fixed)]))
            resolved = {
                i: next(types) for i, k in enumerate([*args, returns]) if k not in TEMPLATES
            }
            builder.add_signature(
                FunctionSignature(
                    argument=[argument(k, resolved.get(i)) for i, k in enumerate(args)],
                    return_type=argument(returns, resolved.get(len(args))),
                )
            )
        function = builder.build()
        # reachable as written both ways: mozfun.map.get_key(...) is a path through nested
        # catalogs, `mozfun.map.get_key`(...) one name in the root catalog
        self.functions.append(((), with_fields(function, name_path=[name])))
        parts = name.split(".")
        self.functions.append((tuple(parts[:-1]), with_fields(function, name_path=parts[-1:])))
        self._invalidate()

    def resolve(self, path: list[str]) -> None:
        """Make the table a statement names (as written) findable, if it is known."""
        written = tuple(path)
        if written in self.paths:
            return
        parts = tuple(".".join(path).lower().split("."))
        for n in range(len(parts), 0, -1):  # the longest known suffix
            if parts[-n:] in self.tables:
                self.paths[written] = parts[-n:]
                self._invalidate()
                return

    def _invalidate(self) -> None:
        if self._catalog is not None:
            self.service.unregister_catalog(registered_id=self._catalog)
            self._catalog = None

    def catalog(self) -> int:
        """The id of the registered catalog: registering once, rather than sending the
        catalog with every statement, saves building the built-in functions each time."""
        if self._catalog is None:
            response = self.service.register_catalog(simple_catalog=self.build_catalog())
            self._catalog = response.registered_id
        return self._catalog

    def build_catalog(self):
        from zetasql.types import SimpleCatalog, SimpleTable

        root = SimpleCatalog(name="root", table=[], catalog=[], custom_function=[])
        root.builtin_function_options = self.builtins

        def node_at(path: tuple[str, ...]):
            node = root
            for part in path:
                sub = next((c for c in node.catalog if c.name == part), None)
                if sub is None:
                    sub = SimpleCatalog(name=part, table=[], catalog=[], custom_function=[])
                    node.catalog.append(sub)
                node = sub
            return node

        for path, function in self.functions:
            node_at(path).custom_function.append(function)
        for written, key in self.paths.items():
            node = node_at(written[:-1])
            if not any(t.name == written[-1] for t in node.table):
                node.table.append(SimpleTable(name=written[-1], column=list(self.tables[key])))
        return root

    # -- statements ------------------------------------------------------------------------

    def learn(self, stmt) -> None:
        """A statement that creates a table or view adds it to the catalog."""
        columns = getattr(stmt, "column_definition_list", None) or []
        named = [(c.name, c.type) for c in columns]
        if not named:
            named = [(c.name, c.column.type) for c in getattr(stmt, "output_column_list", [])]
        name_path = getattr(stmt, "name_path", None)
        kind = type(stmt).__name__
        if (
            name_path
            and named
            and kind.startswith("ResolvedCreate")
            and ("Table" in kind or "View" in kind)
        ):
            self.add_table(".".join(name_path), named)
            # findable under the name it was created with, also by statements whose table
            # names the extraction call does not report (ALTER TABLE)
            written = tuple(name_path)
            if written not in self.paths:
                self.paths[written] = tuple(".".join(name_path).lower().split("."))
                self._invalidate()

    def declare_parameters(self, params: dict[str, str]) -> None:
        """The query parameters of the next scripts with their BigQuery types, as the
        BigQuery client declares them (none: undeclared parameters are inferred)."""
        options = self.options.to_proto()
        names = sorted(params)
        for name, kind in zip(
            names, self.column_types([[n, params[n]] for n in names]), strict=True
        ):
            options.query_parameters.add(name=name, type=kind.to_proto())
        self._options_proto = options

    def analyze_script(self, script: str) -> list[dict]:
        """Every statement of the script in order: {"sql", "ok", "error"}."""
        data = script.encode()
        results = []
        position = 0
        while data[position:].strip().strip(b";").strip():
            end, error = self._analyze_next(script, position)
            if end is None:  # the statement's tables were not all in the catalog yet
                try:
                    end = self._resolve_tables(script, position)
                except Exception as exc:  # a syntax error: report it, skip the rest
                    results.append(
                        {"sql": data[position:].decode(), "ok": False, "error": str(exc)}
                    )
                    break
                _, error = self._analyze_next(script, position)
            text = data[position:end].decode().strip()
            results.append({"sql": text, "ok": error is None, "error": error or ""})
            if end <= position:
                break
            position = end
        return results

    def _analyze_next(self, script: str, position: int) -> tuple[int | None, str | None]:
        """Analyse the statement at `position`: (where the next one starts, the error).
        (None, error) when the error may come from a table not yet in the catalog."""
        from zetasql.types import parse_proto
        from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2 as pb

        request = pb.AnalyzeRequest()
        request.options.CopyFrom(self._options_proto)
        request.registered_catalog_id = self.catalog()
        request.parse_resume_location.input = script
        request.parse_resume_location.byte_position = position
        try:
            response = self.service.wasm_client.call_grpc_func(
                "ZetaSqlLocalService_Analyze", request, pb.AnalyzeResponse
            )
        except Exception as exc:
            return None, str(exc)
        kind = response.resolved_statement.WhichOneof("node") or ""
        if "create" in kind:  # the other statements' trees are not needed: not converted
            self.learn(parse_proto(response).resolved_statement)
        return response.resume_byte_position or len(script.encode()), None

    def _resolve_tables(self, script: str, position: int) -> int:
        """Put the tables the statement at `position` names into the catalog; returns
        where the next statement starts."""
        from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2 as pb

        request = pb.ExtractTableNamesFromNextStatementRequest()
        request.parse_resume_location.input = script
        request.parse_resume_location.byte_position = position
        request.options.CopyFrom(self._language_proto)
        names = self.service.wasm_client.call_grpc_func(
            "ZetaSqlLocalService_ExtractTableNamesFromNextStatement",
            request,
            pb.ExtractTableNamesFromNextStatementResponse,
        )
        for name in names.table_name:
            self.resolve(list(name.table_name_segment))
        return names.resume_byte_position or len(script.encode())


def main() -> None:
    install_module_cache(Path(os.environ["ZETASQL_MODULE_CACHE"]))
    install_fast_memory_access()
    request = json.load(sys.stdin)
    out: dict[str, list[dict]] = {}
    for run, entries in request["runs"].items():
        session = Session()  # each run starts from an empty catalog
        for function in request.get("functions", []):
            session.add_function(function["name"], function["signatures"])
        results = out.setdefault(run, [])
        for entry in entries:
            if entry["kind"] == "load":
                names = list(entry["columns"])
                types = session.column_types([[n, entry["columns"][n]] for n in names])
                session.add_table(entry["table"], list(zip(names, types, strict=True)))
            else:
                session.declare_parameters(entry.get("params") or {})
                results.extend(session.analyze_script(entry["sql"]))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
