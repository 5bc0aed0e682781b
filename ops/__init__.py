"""Runtime code that runs outside CDK synth: Lambda handlers and operational tools.

Each Lambda lives in its own folder (`ops/<name>/handler.py`) and is deployed with
`Code.from_asset` of that folder, so a handler imports nothing but the standard library and
boto3 (which the Lambda Python runtime provides).
"""
