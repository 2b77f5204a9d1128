"""The billing side of the month: the invoice as billed, the terms that price it, the
reconciliation cells per period, and the dispute pack that carries the difference."""
