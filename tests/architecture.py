"""An import-linter contract type: apps reach each other only through their public surface.

import-linter's built-in ``protected`` contract protects listed modules, one contract per app,
and a module added later is unprotected until someone remembers to list it. This contract turns
it around: every module of a container is private to that container unless it is named public
(``services`` and ``selectors`` by default, plus any ``extra_public`` module), so a new
``portal/keys/foo.py`` is private from the day it is written.

Composition roots (URL confs, the demo seeder, an AppConfig wiring its own pages) may import
anything: they are listed in ``allowed_importers``. Imports under ``if TYPE_CHECKING:`` are not
counted (``exclude_type_checking_imports`` in the root options), so a type hint may still name
another app's model.

Used from pyproject.toml::

    [tool.importlinter]
    contract_types = ["public_surface: tests.architecture.PublicSurfaceContract"]
"""

from __future__ import annotations

from typing import Any

import grimp
from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils


class PublicSurfaceContract(Contract):
    type_name = "public_surface"

    containers = fields.ListField(subfield=fields.StringField())
    public = fields.ListField(subfield=fields.StringField(), required=False, default=["services", "selectors"])
    extra_public = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    allowed_importers = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(
        contract_utils.AlertLevel, default=contract_utils.AlertLevel.ERROR
    )

    def _is_public(self, container: str, module: str) -> bool:
        if module == container:
            return True
        first = module[len(container) + 1 :].split(".")[0]
        public: list[str] = self.public  # type: ignore[assignment]
        extra: list[str] = self.extra_public  # type: ignore[assignment]
        return first in public or any(module == e or module.startswith(e + ".") for e in extra)

    def _allowed(self, importer: str) -> bool:
        allowed: list[str] = self.allowed_importers  # type: ignore[assignment]
        return any(importer == a or importer.startswith(a + ".") for a in allowed)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=self.unmatched_ignore_imports_alerting,  # type: ignore[arg-type]
        )
        containers: list[str] = self.containers  # type: ignore[assignment]
        illegal: list[dict[str, Any]] = []
        for container in containers:
            inside = {container} | graph.find_descendants(container)
            for module in sorted(inside):
                if self._is_public(container, module):
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(module)):
                    if importer in inside or self._allowed(importer):
                        continue
                    details = graph.get_import_details(importer=importer, imported=module)
                    illegal.append(
                        {
                            "importer": importer,
                            "imported": module,
                            "line_numbers": tuple(d["line_number"] for d in details),
                        }
                    )
        return ContractCheck(kept=not illegal, warnings=list(removal.warnings), metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for link in check.metadata["illegal"]:
            lines = ", ".join(str(n) for n in link["line_numbers"])
            output.print_error(f"{link['importer']} -> {link['imported']} (l. {lines}): not a public module")
        output.new_line()
        output.print("Go through the app's services.py or selectors.py, or add a selector there.")
