"""Shared test options: ``--update-golden`` rewrites the golden SQL snapshots; the ``slow`` marker.

``pytest -m "not slow"`` is the quick subset for the edit-test loop; CI runs everything. The
slow tests are named here, in one place, rather than decorated file by file, because which
tests are slow is a measurement (``pytest --durations=60``), not a property of the test: when
the measurement changes, this list changes, and the tests themselves stay untouched.
"""

from __future__ import annotations

from typing import Final

import pytest

#: Whole files whose every test is slow: browsers, the README's commands, the bad-input corpus
#: through the CLI, property tests, the Zendesk fixtures, the out-of-core generator, the other
#: SQL engines (Spark, PostgreSQL), the kill-and-crash tests, the file-reader fuzzers.
SLOW_FILES: Final[frozenset[str]] = frozenset({
    "test_browser.py",
    "test_readme.py",
    "test_bad_inputs.py",
    "test_reference_property.py",
    "test_adapter_zendesk.py",
    "test_adapter_zendesk_pages.py",
    "test_adapter_zendesk_etl.py",
    "test_airbyte.py",
    "test_memory.py",
    "test_dialects.py",
    "test_cli_engine.py",
    "test_faults.py",
    "test_fuzz_readers.py",
    "test_live_crash.py",
    "test_engine_spark.py",
})  # fmt: skip

#: Single tests measured at 2.5 s or more on 2 shared cores (``file::function``, any parameter).
SLOW_TESTS: Final[frozenset[str]] = frozenset({
    "test_adapter_salesforce.py::test_options_change_the_count_and_are_logged",
    "test_adapter_salesforce.py::test_rating_questions_option",
    "test_adapters_base.py::test_cli_source_choices_reach_count_and_sources_lists_options",
    "test_check.py::test_cli_bad_input_exits_2",
    "test_cli_meter.py::test_bad_inputs_exit_2",
    "test_cli_meter.py::test_count_json_matches_pandas",
    "test_cli_meter.py::test_empty_workspace_says_why_nothing_counts",
    "test_cli_meter.py::test_explain_names_the_deciding_event",
    "test_cli_meter.py::test_out_writes_one_row_per_candidate",
    "test_cli_meter.py::test_workspace_and_files_agree",
    "test_contract.py::test_cli_clauses_writes_md_html_and_json",
    "test_contract.py::test_cli_price_json_and_chart",
    "test_demo.py::test_cli_demo_and_reconcile_exit_codes",
    "test_evidence.py::test_cli_keygen_evidence_verify_exit_codes",
    "test_evidence.py::test_fresh_checkout_with_only_pack_key_and_export",
    "test_evidence.py::test_proof_without_data_and_the_cli",
    "test_evidence.py::test_same_bytes_in_another_folder_and_time_zone",
    "test_ingest_canonical.py::test_counts_add_up_and_bad_rows_name_their_column",
    "test_ingest_cli.py::test_bad_input_exits_2_with_one_line",
    "test_letter.py::test_figures_equal_the_json",
    "test_letter.py::test_the_evidence_pack_signs_the_letter",
    "test_reconcile.py::test_counts_from_the_join_equal_counts_from_the_cell_table_and_pandas",
    "test_reconcile.py::test_every_row_lands_in_exactly_one_cell_and_matches_pandas",
    "test_reconcile_parquet.py::test_evidence_reads_a_parquet_invoice_with_a_workspace",
    "test_reconcile_parquet.py::test_reconcile_json_carries_the_repeats",
    "test_reconcile_parquet.py::test_reconcile_reads_a_parquet_invoice_with_a_workspace",
    "test_replay.py::test_cli_versions_and_replay",
    "test_report_html.py::test_demo_writes_the_report",
    "test_sampling.py::test_exit_code_through_the_console_script",
    "test_watch.py::test_cli_errors_are_one_line_with_exit_code_2",
    "test_cli_examples.py::test_demo_again_replaces_only_its_own_work",
    "test_cli_examples.py::test_help_example_runs",
    "test_json_output.py::test_cli_json_parses_strictly",
    "test_library.py::test_engine_matches_pandas_entity_by_entity",
    "test_fuzz_yaml.py::test_alias_bombs_are_refused_exactly_past_the_limits",
    "test_drift.py::test_bad_input_exits_2_with_one_line",
    "test_letter.py::test_a_bad_invoice_date_option_is_refused",
    "test_adapter_salesforce.py::test_order_given_does_not_matter_and_reingest_is_idempotent",
    "test_adapter_salesforce_booleans.py::test_empty_status_is_closed_is_not_guessed",
    "test_generate.py::test_truth_agrees_with_an_independent_computation",
    "test_generate.py::test_chunked_files_hold_exactly_the_in_memory_rows",
    "test_live_cli.py::test_log_verify_against_a_live_meter",
    "test_definition.py::test_cli_exits_2_with_one_line",
    "test_cli_meter.py::test_count_known_at_leaves_out_what_arrived_later",
    "test_cli_meter.py::test_sql_prints_each_dialect",
    "test_replay.py::test_cli_bad_input_exits_2",
    "test_cli_meter.py::test_explain_unknown_entity_exits_2",
    "test_reconcile.py::test_invoice_made_from_the_count_reconciles_to_zero",
})  # fmt: skip


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.sql from the current compiler instead of comparing",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the measured slow tests ``slow`` (see the module docstring)."""
    slow = pytest.mark.slow
    for item in items:
        name = item.path.name
        function = getattr(item, "originalname", None) or item.name.split("[")[0]
        if name in SLOW_FILES or f"{name}::{function}" in SLOW_TESTS:
            item.add_marker(slow)


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
