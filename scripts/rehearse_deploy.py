#!/usr/bin/env python3
"""A deploy rehearsal: the template deployed by a CloudFormation engine (moto's), and the six
functions' real binaries run against what it created, with the environment the stack gave them,
every AWS call they make checked against the IAM policies the stack gave their roles.

What the offline checks (scripts/template_test.py) cannot see: names and ARNs computed by
intrinsic functions (the buckets named after the stack id, the ARNs in policies) as an engine
resolves them, and whether each function's real SDK calls (which operation, on which resource,
with which keys) are allowed by its role as written.

Two steps, each in the venv that has its library (scripts/rehearse-deploy runs both):

    template-venv python scripts/rehearse_deploy.py transform template.yaml OUT.json
    moto-venv python     scripts/rehearse_deploy.py run OUT.json BIN_DIR

`run` starts moto in this process, creates the stack, checks its wiring, runs each function's
`bootstrap` (built for this machine, from BIN_DIR) on a fake Lambda Runtime API with one event,
records every request it makes, and evaluates each against the function's role. Exits non-zero
on any problem.

Not rehearsed, and why: resource types moto's CloudFormation cannot create (alarms, the
dashboard, the IoT rule and logging, Firehose, Cognito, the HTTP API, bucket and queue policies)
are left out, and references to them become placeholders; moto's CloudFormation does not apply
buckets' notifications; Lambda's own pollers (Kinesis, DynamoDB stream and SQS event sources) and
its on-failure destinations do not run, so each function gets one committed fixture event (the
merger the transformer's output of its fixture, delivered to the stack's delivery bucket); the
publisher's IoT endpoint is pointed at moto (the stack's is the account's ATS endpoint). IAM is
evaluated here, from the policies as the stack created them, for the calls the functions make
(moto's own enforcement cannot match most resources): identity policies with Allow statements,
wildcards and the ForAllValues:StringLike condition, which is all the template uses.
"""

from __future__ import annotations

import ast
import base64
import copy
import gzip
import http.server
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "events"
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "alleycat"
PARAMETERS = {
    "AlarmEmail": "ops@example.com",
    # The account's endpoint cannot be looked up here (a custom resource): given, as documented.
    "IotEndpoint": "rehearsal-ats.iot.us-east-1.amazonaws.com",
}

# The six functions, logical id -> binary, in the order they run (the merger merges what the
# transformer made).
FUNCTIONS = {
    "TransformerFunction": "transformer",
    "RaceAggregatorFunction": "race-aggregator",
    "LeaderboardWriterFunction": "leaderboard-writer",
    "PublisherFunction": "publisher",
    "ApiFunction": "api",
    "HistoryMergerFunction": "history-merger",
}

problems: list[str] = []


def step(message: str) -> None:
    print(f"rehearse-deploy: {message}", flush=True)


def problem(message: str) -> None:
    problems.append(message)
    print(f"  PROBLEM {message}", flush=True)


# ------------------------------------------------------------------------------------------------
# transform (template venv): the template as `sam deploy` would upload it, SAM expanded
# ------------------------------------------------------------------------------------------------


def transform(template: str, out: str) -> None:
    sys.argv = [sys.argv[0], template]
    sys.path.insert(0, str(ROOT / "scripts"))
    import template_test  # noqa: PLC0415 - the template venv's samtranslator, as the tests use it

    Path(out).write_text(json.dumps(template_test.CFN, indent=1))


# ------------------------------------------------------------------------------------------------
# run (moto venv)
# ------------------------------------------------------------------------------------------------


def references(value: Any):
    """Logical ids a template value refers to (Ref, Fn::GetAtt, ${…} of Fn::Sub)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0] if isinstance(inner, list) else inner.split(".")[0]
            elif key == "Fn::Sub":
                text, names = (inner, {}) if isinstance(inner, str) else (inner[0], inner[1])
                for name in re.findall(r"\$\{([^}!]+)\}", text):
                    if name.split(".")[0] not in names:
                        yield name.split(".")[0]
                yield from references(names)
            else:
                yield from references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from references(inner)


def placeholder(value: Any, left_out: set[str]) -> Any:
    """`value` with every reference to a left-out resource replaced by a placeholder string."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in left_out:
            return f"rehearsal-{value['Ref']}"
        if set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            name = target[0] if isinstance(target, list) else target.split(".")[0]
            if name in left_out:
                return f"arn:aws:rehearsal:{REGION}:{ACCOUNT}:{name}"
        if set(value) == {"Fn::Sub"}:
            inner = value["Fn::Sub"]
            text, names = (inner, {}) if isinstance(inner, str) else (inner[0], inner[1])
            for name in set(re.findall(r"\$\{([^}!]+)\}", text)):
                if name.split(".")[0] in left_out and name not in names:
                    text = text.replace("${" + name + "}", f"rehearsal-{name.split('.')[0]}")
            names = placeholder(names, left_out)
            return {"Fn::Sub": text if not names else [text, names]}
        return {key: placeholder(inner, left_out) for key, inner in value.items()}
    if isinstance(value, list):
        return [placeholder(inner, left_out) for inner in value]
    return value


def rehearsal_template(cfn: dict, creatable: set[str]) -> tuple[dict, set[str]]:
    """The template less what moto cannot create, references to it replaced by placeholders."""
    template = copy.deepcopy(cfn)
    resources = template["Resources"]
    left_out = {name for name, r in resources.items() if r["Type"] not in creatable}
    # Only the dashboard lists alarms: without them it has nothing to show.
    left_out |= {name for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Dashboard"}
    for name in left_out:
        del resources[name]
    for name, resource in resources.items():
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        if [d for d in depends if d in left_out]:
            resource["DependsOn"] = [d for d in depends if d not in left_out]
        resources[name] = placeholder(resource, left_out)
    template["Outputs"] = {
        key: output for key, output in template.get("Outputs", {}).items() if not set(references(output)) & left_out
    }
    return template, left_out


class FakeRuntime:
    """The Lambda Runtime API for one invocation: hands out the event, keeps the answer."""

    def __init__(self, event: bytes, function_arn: str):
        self.event = event
        self.function_arn = function_arn
        self.handed_out = False
        self.answer: tuple[str, bytes] | None = None
        self.done = threading.Event()
        runtime = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if not self.path.endswith("/runtime/invocation/next"):
                    self.send_error(404)
                    return
                if runtime.handed_out:
                    runtime.done.wait(60)  # the next event never comes; the process is stopped
                    self.send_error(503)
                    return
                runtime.handed_out = True
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", "rehearsal-1")
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", runtime.function_arn)
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
                self.send_header("Content-Length", str(len(runtime.event)))
                self.end_headers()
                self.wfile.write(runtime.event)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = self.path.rstrip("/").rsplit("/", 1)[-1]
                runtime.answer = (kind, body)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                runtime.done.set()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.done.set()
        self.server.shutdown()


def invoke(binary: Path, env: dict[str, str], event: bytes, function_arn: str) -> tuple[str, bytes, str]:
    """Runs `binary` for one event: (answer kind: response/error/init, answer body, stdout)."""
    runtime = FakeRuntime(event, function_arn)
    process_env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
        "AWS_LAMBDA_FUNCTION_NAME": function_arn.rsplit(":", 1)[-1],
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "rehearsal",
        "AWS_LAMBDA_LOG_STREAM_NAME": "rehearsal",
        **env,
    }
    process = subprocess.Popen([str(binary)], env=process_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    runtime.done.wait(120)
    time.sleep(0.2)  # the EMF line is printed right after the answer
    process.terminate()
    output, _ = process.communicate(timeout=30)
    runtime.close()
    kind, body = runtime.answer or ("none", b"")
    return kind, body, output.decode("utf-8", "replace")


# ---- IAM: the requests a function made, as (action, resources, condition values) --------------


def s3_calls(method: str, path: str, query: str) -> list[tuple[str, str]]:
    """(action, resource) of a path-style S3 request."""
    parts = unquote(path).lstrip("/").split("/", 1)
    bucket, key = parts[0], (parts[1] if len(parts) > 1 else "")
    if not key:
        if method == "GET":
            return [("s3:ListBucket", f"arn:aws:s3:::{bucket}")]
        return [(f"s3:{method}Bucket", f"arn:aws:s3:::{bucket}")]
    action = {"GET": "s3:GetObject", "HEAD": "s3:GetObject", "PUT": "s3:PutObject", "DELETE": "s3:DeleteObject"}.get(method)
    return [(action or f"s3:{method}", f"arn:aws:s3:::{bucket}/{key}")]


def dynamodb_calls(target: str, body: dict) -> list[tuple[str, str, dict]]:
    """(action, resource, condition values) of a DynamoDB request."""
    operation = target.split(".", 1)[1]
    action = f"dynamodb:{operation}"
    table_arn = lambda name: f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"  # noqa: E731
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(action, table_arn(name), {}) for name in body.get("RequestItems", {})]
    if operation == "TransactWriteItems":
        # IAM has no action of its own for a transaction: each item needs its own action.
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
        found = []
        for entry in body.get("TransactItems", []):
            for kind, request in entry.items():
                item = request.get("Item") or request.get("Key") or {}
                keys = {"dynamodb:LeadingKeys": [v.get("S") for k, v in item.items() if k == "pk"]}
                found.append((f"dynamodb:{kinds.get(kind, kind)}", table_arn(request.get("TableName")), keys))
        return found
    resource = table_arn(body.get("TableName"))
    if body.get("IndexName"):
        resource += f"/index/{body['IndexName']}"
    item = body.get("Item") or body.get("Key") or {}
    keys = {"dynamodb:LeadingKeys": [v.get("S") for k, v in item.items() if k == "pk"]} if item else {}
    return [(action, resource, keys)]


def requests_by_caller(recording: Path) -> dict[str, list[tuple[str, str, dict]]]:
    """Every recorded request, as (action, resource, condition values), by access key id."""
    calls: dict[str, list[tuple[str, str, dict]]] = {}
    for line in recording.read_text().splitlines():
        entry = json.loads(line)
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        credential = re.search(r"Credential=([^/]+)/\d+/[^/]+/([^/]+)/", headers.get("authorization", ""))
        if not credential:
            continue
        caller, service = credential.groups()
        body = base64.b64decode(entry["body"]) if entry.get("body_encoded") else (entry.get("body") or "").encode()
        url = urlparse(entry["url"])
        if service == "s3":
            found = [(a, r, {}) for a, r in s3_calls(entry["method"], url.path, url.query)]
        elif service == "dynamodb":
            found = dynamodb_calls(headers.get("x-amz-target", ""), json.loads(body or b"{}"))
        elif service in ("iotdata", "iot", "iotdevicegateway"):
            topic = unquote(url.path.split("/topics/", 1)[-1])
            found = [("iot:Publish", f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/{topic}", {})]
        else:
            found = [(f"{service}:{headers.get('x-amz-target', entry['method'] + ' ' + url.path)}", "?", {})]
        calls.setdefault(caller, []).extend(found)
    return calls


def matches(pattern: str, value: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), value) is not None


def allowed(statements: list[dict], action: str, resource: str, context: dict) -> bool:
    """Whether an identity policy allows the request (no Deny statements here: none are used)."""
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if not any(matches(a, action) for a in actions) or not any(matches(r, resource) for r in resources):
            continue
        if conditions_hold(statement.get("Condition", {}), context):
            return True
    return False


def conditions_hold(conditions: dict, context: dict) -> bool:
    for operator, values in conditions.items():
        for key, expected in values.items():
            expected = [expected] if isinstance(expected, str) else expected
            actual = context.get(key)
            if operator == "ForAllValues:StringLike":
                if actual is None or not all(any(matches(e, a or "") for e in expected) for a in actual):
                    return False
            else:
                problem(f"condition {operator} {key} is not understood by the rehearsal")
                return False
    return True


# ---- the rehearsal -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cfn_path: str, bin_dir: str) -> int:
    recording = Path(os.environ.get("REHEARSAL_DIR", "/tmp")) / f"rehearsal-{os.getpid()}.jsonl"
    os.environ["MOTO_RECORDER_FILEPATH"] = str(recording)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "rehearsal")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "rehearsal")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)

    import logging  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto still hands table stream records to the functions it would run in Docker (not here).
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    import boto3  # noqa: PLC0415 - the moto venv's
    import requests  # noqa: PLC0415
    from moto.cloudformation.parsing import get_model_map  # noqa: PLC0415
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = lambda service: boto3.client(service, region_name=REGION, endpoint_url=endpoint)  # noqa: E731
    try:
        cfn = json.loads(Path(cfn_path).read_text())
        template, left_out = rehearsal_template(cfn, set(get_model_map()))
        step(f"left out (moto cannot create them): {len(left_out)} resources of types "
             f"{', '.join(sorted({cfn['Resources'][n]['Type'] for n in left_out}))}")

        # What `sam deploy` uploads: each function's code, at the URI the template names.
        s3 = client("s3")
        s3.create_bucket(Bucket="packaged-by-sam")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("bootstrap", b"")
        for resource in template["Resources"].values():
            location = resource.get("Properties", {}).get("Code", {})
            if "S3Key" in location:
                s3.put_object(Bucket=location["S3Bucket"], Key=location["S3Key"], Body=code.getvalue())

        step("creating the stack")
        cloudformation = client("cloudformation")
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in PARAMETERS.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            problem(f"stack {stack['StackStatus']}: {stack.get('StackStatusReason')}")
            return 1
        physical = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        }
        # A resource with a condition (false for these parameters: the IoT endpoint lookup) may
        # rightly not exist.
        missing = sorted(
            name for name, resource in template["Resources"].items()
            if name not in physical and "Condition" not in resource
        )
        if missing:
            problem(f"not created: {missing}")
        step(f"CREATE_COMPLETE: {len(physical)} resources")

        check_wiring(client, physical, template)
        # Lambda's pollers are not rehearsed (moto would run the functions in Docker): the
        # functions run below, one fixture event each, and the queues keep what they are sent.
        lambda_ = client("lambda")
        for mapping in lambda_.list_event_source_mappings()["EventSourceMappings"]:
            lambda_.delete_event_source_mapping(UUID=mapping["UUID"])
        requests.post(f"{endpoint}/moto-api/recorder/start-recording", timeout=10)
        rehearse_functions(client, physical, Path(bin_dir), endpoint)
        requests.post(f"{endpoint}/moto-api/recorder/stop-recording", timeout=10)
        check_permissions(client, physical, recording)
    finally:
        server.stop()
        recording.unlink(missing_ok=True)
    step(f"{len(problems)} problem(s)" if problems else "the stack's wiring and every function's calls hold")
    return 1 if problems else 0


def check_wiring(client, physical: dict[str, str], template: dict) -> None:
    """Every name a function is configured with, every event source and destination and every
    resource of a role's policy is one the stack created. (S3 notifications are not: moto's
    CloudFormation does not apply them; scripts/template_test.py checks them.)"""
    step("wiring: environments, event sources, destinations, policy resources")
    def created(kind: str) -> set[str]:
        return {physical[n] for n, r in template["Resources"].items() if r["Type"] == kind and n in physical}

    buckets = created("AWS::S3::Bucket")
    tables = created("AWS::DynamoDB::Table")
    queues = {url.rsplit("/", 1)[-1] for url in created("AWS::SQS::Queue")}
    streams = created("AWS::Kinesis::Stream")
    logs = created("AWS::Logs::LogGroup")
    lambda_ = client("lambda")
    for logical, binary in FUNCTIONS.items():
        configuration = lambda_.get_function_configuration(FunctionName=physical[logical])
        for variable, value in configuration.get("Environment", {}).get("Variables", {}).items():
            if variable.endswith("_BUCKET") and str(value) not in buckets:
                problem(f"{binary}: {variable}={value} is no bucket of the stack ({sorted(buckets)})")
            if variable == "TABLE_NAME" and str(value) not in tables:
                problem(f"{binary}: TABLE_NAME={value} is no table of the stack")
    for mapping in lambda_.list_event_source_mappings()["EventSourceMappings"]:
        source = mapping["EventSourceArn"]
        service, name = source.split(":")[2], source.split(":", 5)[5]
        known = {
            "sqs": lambda: name in queues,
            "kinesis": lambda: name.split("/")[1] in streams,
            "dynamodb": lambda: name.split("/")[1] in tables,
        }.get(service, lambda: False)()
        if not known:
            problem(f"event source {source} is no resource of the stack")
        destination = mapping.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination and destination.split(":", 5)[5] not in buckets | queues:
            problem(f"on-failure destination {destination} is no bucket or queue of the stack")
    iam = client("iam")
    for logical, binary in FUNCTIONS.items():
        for where, statement in role_statements(iam, lambda_, physical[logical]):
            resources = statement.get("Resource", [])
            for resource in [resources] if isinstance(resources, str) else resources:
                arn = resource.split(":", 5)
                service, rest = arn[2], arn[5]
                name = rest.split("/", 1)[-1].split("/")[0] if "/" in rest else rest
                known = {
                    "s3": lambda: rest.split("/")[0] in buckets,
                    "dynamodb": lambda: rest.split("/")[1] in tables,
                    "kinesis": lambda: rest.split("/")[1] in streams,
                    "sqs": lambda: rest in queues,
                    "logs": lambda: rest.split(":")[1] in logs,
                }.get(service, lambda: True)
                if "*" not in name and not known():
                    problem(f"{binary}: {where} names {resource}, no resource of the stack")


def role_statements(iam, lambda_, function: str) -> list[tuple[str, dict]]:
    role = lambda_.get_function_configuration(FunctionName=function)["Role"].rsplit("/", 1)[-1]
    found = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except json.JSONDecodeError:
                # moto's CloudFormation keeps a role's inline policies as Python literals.
                document = ast.literal_eval(document)
        statements = document.get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            found.append((f"{role}/{name}", statement))
    return found


def claim_event(fixture: str, method: str) -> str:
    """The HTTP API fixture as a rider's claim of racer 8, as the JWT authorizer hands it over."""
    event = json.loads(fixture)
    path = "/racers/8/claim"
    event.update({"routeKey": f"{method} /racers/{{racerId}}/claim", "rawPath": path, "rawQueryString": "",
                  "pathParameters": {"racerId": "8"}})
    event.pop("queryStringParameters", None)
    event["requestContext"].update({"routeKey": event["routeKey"]})
    event["requestContext"]["http"].update({"method": method, "path": path})
    event["requestContext"]["authorizer"] = {"jwt": {
        "claims": {"sub": "us-east-1:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "aud": "us-east-1:pool",
                   "iss": "https://cognito-identity.amazonaws.com"},
        "scopes": None,
    }}
    return json.dumps(event)


def rehearse_functions(client, physical: dict[str, str], bin_dir: Path, endpoint: str) -> None:
    """Each function's binary, run once with the stack's environment for it."""
    lambda_ = client("lambda")
    s3 = client("s3")
    delivery_lines = b""
    for logical, binary in FUNCTIONS.items():
        configuration = lambda_.get_function_configuration(FunctionName=physical[logical])
        env = {k: str(v) for k, v in configuration.get("Environment", {}).get("Variables", {}).items()}
        env.update({
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": REGION,
            # Each function signs as itself, so that its requests can be told apart.
            "AWS_ACCESS_KEY_ID": "REHEARSAL" + binary.upper().replace("-", ""),
            "AWS_SECRET_ACCESS_KEY": "rehearsal",
        })
        if "IOT_ENDPOINT" in env:
            env["IOT_ENDPOINT"] = endpoint  # the account's IoT data endpoint, stood in for by moto
        fixture = {
            "transformer": "firehose.json",
            "race-aggregator": "kinesis.json",
            "leaderboard-writer": "kinesis.json",
            "publisher": "dynamodb-stream.json",
            "api": "http-api.json",
            "history-merger": "sqs-s3-put.json",
        }[binary]
        body = (FIXTURES / fixture).read_text()
        events = [(fixture, body)]
        if binary == "history-merger":
            # The transformer's output of the rehearsal, delivered as Firehose would.
            body = body.replace("alleycat-delivery-123456789012", env["DELIVERY_BUCKET"])
            key = json.loads(json.loads(body)["Records"][1]["body"])["Records"][0]["s3"]["object"]["key"]
            s3.put_object(Bucket=env["DELIVERY_BUCKET"], Key=key, Body=gzip.compress(delivery_lines))
            events = [(fixture, body)]
        if binary == "api":
            # A rider claims racer 8, then releases it: the api's only writes.
            events += [(f"{fixture} as {method} /racers/8/claim", claim_event(body, method)) for method in ("POST", "DELETE")]
        for event, body in events:
            kind, answer, output = invoke(bin_dir / binary, env, body.encode(), configuration["FunctionArn"])
            if kind != "response":
                problem(f"{binary}: answered {kind}: {answer[:500]!r}\n{output[-2000:]}")
                continue
            response = json.loads(answer or b"null")
            if binary == "transformer":
                records = response.get("records", [])
                delivery_lines = b"".join(base64.b64decode(r["data"]) for r in records if r.get("result") == "Ok")
                if not delivery_lines:
                    problem("transformer: no record transformed")
            failures = response.get("batchItemFailures") if isinstance(response, dict) else None
            if failures:
                problem(f"{binary}: reported failures {failures}\n{output[-2000:]}")
            if binary == "api" and response.get("statusCode", 500) >= 400:
                problem(f"api: {event} answered {response.get('statusCode')}: {response.get('body')}")
            step(f"{binary}: invoked with {event}, answered {json.dumps(response)[:120]}")


def check_permissions(client, physical: dict[str, str], recording: Path) -> None:
    """Every request each function made is allowed by its role, as the stack created it."""
    step("IAM: every request of every function against its role")
    lambda_ = client("lambda")
    iam = client("iam")
    calls = requests_by_caller(recording)
    for logical, binary in FUNCTIONS.items():
        caller = "REHEARSAL" + binary.upper().replace("-", "")
        statements = [s for _, s in role_statements(iam, lambda_, physical[logical])]
        made = calls.get(caller, [])
        step(f"{binary}: {len(made)} request(s)")
        for action, resource, context in sorted(set((a, r, json.dumps(c, sort_keys=True)) for a, r, c in made)):
            verdict = "allowed" if allowed(statements, action, resource, json.loads(context)) else "DENIED"
            print(f"    {verdict:7} {action} {resource} {context if context != '{}' else ''}".rstrip(), flush=True)
            if verdict == "DENIED":
                problem(f"{binary}: {action} on {resource} {context} is not allowed by its role")


def without_permission(cfn_path: str, out: str, role_id: str, action: str) -> None:
    """A copy of the expanded template whose role `role_id` (logical id) no longer grants
    `action`: the rehearsal must fail on it, which shows that it checks what it claims to."""
    with open(cfn_path) as f:
        cfn = json.load(f)
    role = cfn["Resources"].get(role_id)
    if role is None or role.get("Type") != "AWS::IAM::Role":
        raise SystemExit(f"no role {role_id} in the expanded template")
    removed = 0
    for policy in role["Properties"].get("Policies", []):
        statements = policy["PolicyDocument"].get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            actions = statement.get("Action")
            if isinstance(actions, list) and action in actions:
                actions.remove(action)
                removed += 1
            elif actions == action:
                statement["Action"] = []
                removed += 1
    if removed == 0:
        raise SystemExit(f"{role_id} grants no {action}: nothing to remove")
    with open(out, "w") as f:
        json.dump(cfn, f)
    print(f"rehearsal: {role_id} without {action}, which must fail the rehearsal", flush=True)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "transform":
        transform(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) == 6 and sys.argv[1] == "break":
        without_permission(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "run":
        return run(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
