"""The Streamlit front end of the model debugger (``shieldkit ui``). Library code lives in shieldkit.debugger."""
