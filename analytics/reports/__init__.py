"""Reports: the operator dashboard, developers' usage, the usage API and reconciliation."""
