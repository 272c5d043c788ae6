"""Measurement apart from the library: the speed benchmark (`benchmark`, its naive `references` and `report`),
looking inside the recurrence (`diagnostics`, `inspection`). Figures are drawn by `hf_rnn.plotting`; the
`hf-rnn benchmark / diagnose / compare-cells` commands live in `hf_rnn.commands`."""
