"""Preference-data sources: one adapter per public dataset, each turning its rows into the common
preference row (`pair.Pair`), and `prepare` (decontamination, dedupe, balancing, report) behind
`judgejax data prepare`."""
