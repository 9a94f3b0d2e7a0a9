"""Every source adapter by name, and the folder of the copies shipped with judgejax."""
from __future__ import annotations

from judgejax.data.shipped import shipped
from judgejax.sources import coconot, debugbench, gsm8k, hh_rlhf, llamafactory, prm800k
from judgejax.sources.source import Source

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (hh_rlhf.SOURCE, coconot.SOURCE, *llamafactory.SOURCES, prm800k.SOURCE, gsm8k.SOURCE, debugbench.SOURCE)
}
# Subsets of the sources whose licences allow redistribution, laid out like shared/data/preferences
# (see its README.md; rebuilt by tools/vendor_preference_data.py).
SHIPPED_DIR = shipped("pref_data")
