"""The policy pack that `pulumi preview/up --policy-pack policy` runs (`__main__.py`, rules in `policies.py`), and
`sdk_facts`, which writes the provider SDK facts the rules need to `sdk_facts.json`.

The pack runs in its own small virtualenv (`requirements.txt`) and imports nothing of this repository.
"""
