"""The reviewers' and analysts' pages (Streamlit):

    pa-solver ui                 (or: streamlit run ui/app.py)

- What-if (whatif.py): one case, every plan's answer, change facts and watch.
- Batch (batch.py): a JSONL of cases or results, the report as charts.
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
])
page.run()
