"""The reviewers' and analysts' pages (Streamlit):

    pa-solver ui                 (or: streamlit run ui/app.py)

- What-if (whatif.py): one case, every plan's answer, change facts and watch.
- Batch (batch.py): a JSONL of cases or results, the report as charts.
- Compare plans (compare.py): where two plans, or a plan and another version
  of its rules, part ways; a profile opens in What-if.
- Recorded decisions (recorded.py): what the service answered, from its
  record (`pa-solver ui --store PATH`); a $submit's case opens in What-if.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="Prior authorization", layout="wide")
# Reviewers see the page, not Streamlit's developer menu (no Deploy button).
st.set_option("client.toolbarMode", "viewer")
page = st.navigation([
    st.Page(str(HERE / "whatif.py"), title="What-if", icon=":material/search:", default=True),
    st.Page(str(HERE / "batch.py"), title="Batch", icon=":material/bar_chart:"),
    st.Page(str(HERE / "compare.py"), title="Compare plans", icon=":material/compare_arrows:"),
    st.Page(str(HERE / "recorded.py"), title="Recorded decisions", icon=":material/history:"),
])
page.run()
