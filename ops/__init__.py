"""Runtime code that runs outside CDK synth: Lambda handlers and operational tools.

Each Lambda lives in its own folder (`ops/<name>/handler.py`) and is deployed with
`Code.from_asset` of that folder, without Docker bundling. A handler imports the standard
library and boto3 (which the Lambda Python runtime provides); any other package is pinned in
`ops/<name>/requirements.txt` and ships as a layer of PyPI's wheels for the function's platform,
which `make install` fetches without Docker (constructs_lib/lambda_deps.py declares the function),
as the API key minter's PyJWT and the restore validation's pg8000 do.
"""
