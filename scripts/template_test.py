#!/usr/bin/env python3
"""Security and consistency properties of template.yaml, checked offline.

Run with the Python of scripts/template-tools (it needs cfn-lint's YAML loader, which understands
!Ref / !Sub / !GetAtt, and aws-sam-translator, which expands the SAM resources exactly as
CloudFormation's transform does, so that anything SAM generates is checked too):

    "$(bash scripts/template-tools)/python" scripts/template_test.py [template.yaml]

Every check prints ok/FAIL with the reasons; the script exits non-zero if any check fails.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

from cfnlint.decode import cfn_yaml
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"

# Actions without resource-level permissions, the only ones that may name Resource "*".
STAR_RESOURCE_ACTIONS = {"iot:DescribeEndpoint"}

# The unauthenticated (riders') role: exactly these (action, resource) pairs. A rider's identity is
# its Cognito identity id, which IAM substitutes for this policy variable (written ${!…} in !Sub).
IOT_ARN = "arn:aws:iot:REGION:ACCOUNT:"
RIDER_IDENTITY = "${cognito-identity.amazonaws.com:sub}"
PUBLISH_TOPIC = "alleycat-publish"
STANDINGS_TOPICS = "alleycat-subscribe/class-*"
# The claim routes (a rider claims and releases a racer as itself) take the rider's Cognito OpenID
# token (GetOpenIdToken: iss Cognito identity, aud the identity pool, sub the identity id) as a
# bearer token, checked by the HTTP API's JWT authorizer; every other route is open. Not SigV4:
# Cognito scopes the guests' credentials down to services without API Gateway, so the riders'
# role grants nothing but IoT.
CLAIM_PATH = "/racers/{racerId}/claim"
CLAIM_ROUTES = {("POST", CLAIM_PATH), ("DELETE", CLAIM_PATH)}
COGNITO_IDENTITY_ISSUER = "https://cognito-identity.amazonaws.com"
BEARER_SOURCE = "$request.header.Authorization"
# The headers a browser's claim carries, which CORS preflights must allow: exactly these.
CLAIM_HEADERS = {"authorization", "content-type"}

UNAUTHENTICATED_GRANTS = {
    ("iot:Connect", IOT_ARN + "client/" + RIDER_IDENTITY),
    ("iot:Publish", IOT_ARN + "topic/" + PUBLISH_TOPIC),
    ("iot:Subscribe", IOT_ARN + "topicfilter/" + STANDINGS_TOPICS),
    ("iot:Receive", IOT_ARN + "topic/" + STANDINGS_TOPICS),
}

# The ingest rule: every record published over MQTT carries its publisher's identity. The client
# id, not principal(): the riders' role pins the client id to the Cognito identity id, while
# principal() of a SigV4 (WebSocket) connection is the role's id and session name, shared by every
# guest (docs/deploy.md, "Who may ride as whom").
INGEST_SQL = f"SELECT *, clientid() AS identityId, timestamp() AS ingestTimestamp FROM '{PUBLISH_TOPIC}'"

# Environment of each function (README, "The functions"; each crate's Config::from_lookup):
# (required, optional). AWS_REGION is reserved: Lambda sets it and rejects templates that do.
FUNCTION_ENV = {
    "race-aggregator": (
        {"TABLE_NAME"},
        {
            "RACE_SECONDS",
            "WINDOW_SECONDS",
            "RETRY_MAX_ATTEMPTS",
            "WRITE_CONCURRENCY",
            "CLOCK_SKEW_SECONDS",
            "MAX_RACERS_PER_RACE",
        },
    ),
    "leaderboard-writer": (
        {"TABLE_NAME"},
        {"RACE_SECONDS", "WINDOW_SECONDS", "RETRY_MAX_ATTEMPTS", "WRITE_CONCURRENCY", "CLOCK_SKEW_SECONDS"},
    ),
    "transformer": (set(), {"RACE_SECONDS", "WINDOW_SECONDS", "CLOCK_SKEW_SECONDS"}),
    "publisher": ({"IOT_ENDPOINT"}, set()),
    "history-merger": (
        {"DELIVERY_BUCKET", "HISTORY_BUCKET", "TABLE_NAME"},
        {"HISTORY_TOP_K", "MERGE_CONCURRENCY", "RACE_SECONDS", "WINDOW_SECONDS", "CLOCK_SKEW_SECONDS"},
    ),
    "api": (
        {"TABLE_NAME", "HISTORY_BUCKET", "IOT_ENDPOINT", "IDENTITY_POOL_ID"},
        {
            "PLATFORM",
            "CORS_ALLOW_ORIGIN",
            "HISTORY_URL_TTL_SECONDS",
            "HISTORY_TOP_K",
            "RACE_SECONDS",
            "WINDOW_SECONDS",
            "CLAIM_TTL_SECONDS",
        },
    ),
}

# sam build's directory of the six functions (their CodeUri): its Makefile builds each one.
MAKEFILE_DIR = "deploy/"

# Read by every function's `main` (alleycat_aws::serve), not by its Config: the metrics' Stack
# dimension, set once in Globals to the stack's name.
SERVE_ENV = {"STACK_NAME": {"Ref": "AWS::StackName"}}

# The table's TTL attribute: only claims carry it (epoch seconds of their expiry).
TTL_ATTRIBUTE = "ttl"

# Settings of the trust rules (plausibility, claims): variable -> (parameter, functions set from it).
TRUST_SETTINGS = {
    "CLOCK_SKEW_SECONDS": (
        "ClockSkewSeconds",
        {"race-aggregator", "leaderboard-writer", "transformer", "history-merger"},
    ),
    "MAX_RACERS_PER_RACE": ("MaxRacersPerRace", {"race-aggregator"}),
    "CLAIM_TTL_SECONDS": ("ClaimTtlSeconds", {"api"}),
}


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """cfn-lint's nodes (with line marks) as plain dicts, lists and strings."""
    return json.loads(json.dumps(value))


class PolicyLoader:
    """The template uses no managed policies, so the translator never needs the real map."""

    def load(self) -> dict[str, str]:
        return {}


# The translator resolves pseudo parameters from a region; any region does for these checks.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
SAM = plain(cfn_yaml.load(str(TEMPLATE)))


def packaged(template: dict) -> dict:
    """The template as `sam deploy` uploads it: local code locations replaced by S3 URIs."""
    template = copy.deepcopy(template)
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = "s3://packaged-by-sam/" + name
    return template


CFN = transform(packaged(SAM), {}, PolicyLoader())
RESOURCES: dict[str, dict] = CFN["Resources"]


def of_type(kind: str) -> dict[str, dict]:
    return {name: r for name, r in RESOURCES.items() if r.get("Type") == kind}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "REGION",
    "AWS::AccountId": "ACCOUNT",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "STACK",
}


def render(value: Any) -> str:
    """An expression as a canonical string: pseudo parameters become aws / REGION / ACCOUNT /
    STACK, references <Name> and attributes <Name.Attr>, anything else <Fn::…>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return PSEUDO.get(arg, f"<{arg}>")
        if fn == "Fn::GetAtt":
            return "<" + (arg if isinstance(arg, str) else ".".join(arg)) + ">"
        if fn == "Fn::Sub":
            text, names = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

            def substitute(match: re.Match) -> str:
                name = match.group(1)
                if name in names:
                    return render(names[name])
                if name in PSEUDO:
                    return PSEUDO[name]
                return f"<{name}>"

            # ${!Name} is Fn::Sub's escape for a literal ${Name} (an IAM policy variable, say).
            return re.sub(r"\$\{([^}!]+)\}", substitute, text).replace("${!", "${")
        return f"<{fn}>"
    return f"<{type(value).__name__}>"


def statements(document: Any) -> list[dict]:
    return as_list((document or {}).get("Statement", []))


def policy_documents() -> list[tuple[str, dict]]:
    """(where, document) for every identity and resource policy in the expanded template."""
    found = []
    for name, role in of_type("AWS::IAM::Role").items():
        props = role.get("Properties", {})
        found.append((f"{name} (trust)", props.get("AssumeRolePolicyDocument")))
        for policy in props.get("Policies", []):
            found.append((f"{name}/{policy.get('PolicyName')}", policy.get("PolicyDocument")))
    for kind in (
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
    ):
        for name, resource in of_type(kind).items():
            found.append((name, resource.get("Properties", {}).get("PolicyDocument")))
    return found


# ------------------------------------------------------------------------------------------------
# Checks: each returns a list of problems (empty = pass)
# ------------------------------------------------------------------------------------------------

CHECKS: list[tuple[str, Callable[[], list[str]]]] = []


def check(description: str):
    def register(fn: Callable[[], list[str]]):
        CHECKS.append((description, fn))
        return fn

    return register


@check("the SAM transform leaves no serverless resource behind")
def transformed() -> list[str]:
    return [f"{n}: {r['Type']}" for n, r in RESOURCES.items() if r["Type"].startswith("AWS::Serverless::")]


@check("no IAM statement allows a wildcard action, NotAction or NotResource")
def no_wildcard_actions() -> list[str]:
    problems = []
    for where, document in policy_documents():
        for statement in statements(document):
            if statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement or "NotResource" in statement:
                problems.append(f"{where}: Allow with NotAction/NotResource")
            for action in as_list(statement.get("Action", [])):
                if not isinstance(action, str) or "*" in action or "?" in action:
                    problems.append(f"{where}: Allow of action {action!r}")
    return problems


@check('identity policies name exact resources ("*" only for actions without resource-level permissions)')
def exact_resources() -> list[str]:
    problems = []
    for where, document in policy_documents():
        if "(trust)" in where:
            continue
        for statement in statements(document):
            if statement.get("Effect") != "Allow" or "Principal" in statement:
                continue
            resources = [render(r) for r in as_list(statement.get("Resource", []))]
            if not resources:
                problems.append(f"{where}: Allow without Resource")
            actions = set(as_list(statement.get("Action", [])))
            for resource in resources:
                if resource == "*" and not actions <= STAR_RESOURCE_ACTIONS:
                    problems.append(f"{where}: {sorted(actions)} on Resource '*'")
                if re.fullmatch(r"arn:aws:[a-z0-9-]+:(REGION|\*|):(ACCOUNT|\*|):\*", resource):
                    problems.append(f"{where}: {sorted(actions)} on every resource of a service: {resource}")
    return problems


@check("no role has managed policies; every function has a role of its own, defined here")
def own_roles() -> list[str]:
    problems = []
    for name, role in of_type("AWS::IAM::Role").items():
        if role.get("Properties", {}).get("ManagedPolicyArns"):
            problems.append(f"{name}: managed policies {role['Properties']['ManagedPolicyArns']}")
    owners: dict[str, str] = {}
    for name, function in of_type("AWS::Lambda::Function").items():
        role = function["Properties"].get("Role")
        if not (isinstance(role, dict) and "Fn::GetAtt" in role):
            problems.append(f"{name}: role {role!r} is not a role of this template")
            continue
        role_name = render(role).strip("<>").split(".")[0]
        if RESOURCES.get(role_name, {}).get("Type") != "AWS::IAM::Role":
            problems.append(f"{name}: role {role_name} is not an AWS::IAM::Role")
        if role_name in owners:
            problems.append(f"{name} shares role {role_name} with {owners[role_name]}")
        owners[role_name] = name
    return problems


def unauthenticated_role() -> tuple[str, dict, list[str]]:
    """(logical id, properties, problems) of the identity pool's one role, the riders' role."""
    attachments = of_type("AWS::Cognito::IdentityPoolRoleAttachment")
    if len(attachments) != 1:
        raise ValueError(f"expected one identity pool role attachment, found {len(attachments)}")
    roles = next(iter(attachments.values()))["Properties"].get("Roles", {})
    problems = []
    if set(roles) != {"unauthenticated"}:
        problems.append(f"identity pool roles {sorted(roles)}: only 'unauthenticated' is expected")
    role_name = render(roles.get("unauthenticated")).strip("<>").split(".")[0]
    role = RESOURCES.get(role_name)
    if not role or role.get("Type") != "AWS::IAM::Role":
        raise ValueError(f"unauthenticated role {role_name} not found")
    return role_name, role["Properties"], problems


def rider_statements() -> list[dict]:
    """Every statement of the riders' role's policies."""
    _, props, _ = unauthenticated_role()
    return [s for policy in props.get("Policies", []) for s in statements(policy["PolicyDocument"])]


def rider_grants(action: str | None = None) -> set[tuple[str, str]]:
    """(action, rendered resource) of every Allow of the riders' role (of one action, if given)."""
    return {
        (a, render(resource))
        for statement in rider_statements()
        if statement.get("Effect") == "Allow"
        for a in as_list(statement.get("Action", []))
        for resource in as_list(statement.get("Resource", []))
        if action is None or a == action
    }


@check("only this pool's unauthenticated identities assume the riders' role, which has no managed policies")
def unauthenticated_trust() -> list[str]:
    role_name, props, problems = unauthenticated_role()
    if props.get("ManagedPolicyArns"):
        problems.append(f"{role_name}: managed policies")
    for statement in statements(props["AssumeRolePolicyDocument"]):
        condition = statement.get("Condition", {})
        aud = condition.get("StringEquals", {}).get("cognito-identity.amazonaws.com:aud")
        amr = condition.get("ForAnyValue:StringLike", {}).get("cognito-identity.amazonaws.com:amr")
        if statement.get("Principal") != {"Federated": "cognito-identity.amazonaws.com"}:
            problems.append(f"{role_name}: trusts {statement.get('Principal')}")
        if statement.get("Action") != "sts:AssumeRoleWithWebIdentity":
            problems.append(f"{role_name}: trust action {statement.get('Action')}")
        if render(aud) != "<IdentityPool>" or amr != "unauthenticated":
            problems.append(f"{role_name}: trust not limited to this pool's unauthenticated identities")
    # Nothing else may be assumed by Cognito identities.
    for name, other in of_type("AWS::IAM::Role").items():
        if name != role_name and "cognito-identity" in json.dumps(other["Properties"].get("AssumeRolePolicyDocument")):
            problems.append(f"{name}: another role trusts Cognito identities")
    return problems


@check("a rider may connect to IoT only with its own Cognito identity id as client id")
def rider_connect() -> list[str]:
    expected = {("iot:Connect", IOT_ARN + "client/" + RIDER_IDENTITY)}
    found = rider_grants("iot:Connect")
    return [f"iot:Connect on {r!r}, expected only client/{RIDER_IDENTITY}" for _, r in sorted(found - expected)] + [
        f"no iot:Connect on client/{RIDER_IDENTITY}" for _ in expected - found
    ]


@check(f"a rider may publish only to {PUBLISH_TOPIC}, and never a retained message")
def rider_publish() -> list[str]:
    expected = {("iot:Publish", IOT_ARN + "topic/" + PUBLISH_TOPIC)}
    found = rider_grants("iot:Publish")
    problems = [f"iot:Publish on {r!r}" for _, r in sorted(found - expected)]
    problems += [f"no iot:Publish on topic/{PUBLISH_TOPIC}" for _ in expected - found]
    problems += [f"allows {a} on {r!r}" for a, r in sorted(rider_grants("iot:RetainPublish"))]
    return problems


@check(f"a rider may subscribe to and receive only {STANDINGS_TOPICS}")
def rider_subscribe() -> list[str]:
    expected = {
        ("iot:Subscribe", IOT_ARN + "topicfilter/" + STANDINGS_TOPICS),
        ("iot:Receive", IOT_ARN + "topic/" + STANDINGS_TOPICS),
    }
    found = rider_grants("iot:Subscribe") | rider_grants("iot:Receive")
    return [f"{a} on {r!r}" for a, r in sorted(found - expected)] + [
        f"missing {a} on {r!r}" for a, r in sorted(expected - found)
    ]


@check("the riders' role allows exactly its IoT grants (connect, publish, subscribe, receive), each a named "
       "action (no wildcard, NotAction or NotResource), and nothing of any other service")
def rider_grants_exact() -> list[str]:
    problems = []
    for statement in rider_statements():
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"NotAction/NotResource in {statement}")
        for action in as_list(statement.get("Action", [])):
            if not isinstance(action, str) or "*" in action or "?" in action:
                problems.append(f"wildcard action {action!r}")
    found = rider_grants()
    for extra in sorted(found - UNAUTHENTICATED_GRANTS):
        problems.append(f"unexpected grant {extra}")
    for missing in sorted(UNAUTHENTICATED_GRANTS - found):
        problems.append(f"missing grant {missing}")
    for action, resource in sorted(found):
        if not action.startswith("iot:"):
            problems.append(f"grants {action} on {resource!r}: the riders' role is for IoT only")
    return problems


@check("the IoT rule stamps every MQTT record with its publisher's identity (identityId = client id)")
def ingest_rule_identity() -> list[str]:
    rules = of_type("AWS::IoT::TopicRule")
    if len(rules) != 1:
        return [f"expected one IoT rule, found {len(rules)}"]
    (name, rule), = rules.items()
    payload = rule["Properties"]["TopicRulePayload"]
    problems = []
    sql = " ".join(payload.get("Sql", "").split())
    if sql != INGEST_SQL:
        problems.append(f"{name}: SQL {sql!r}, expected {INGEST_SQL!r}")
    if payload.get("AwsIotSqlVersion") != "2016-03-23":
        problems.append(f"{name}: SQL version {payload.get('AwsIotSqlVersion')}")
    return problems


def http_routes() -> dict[tuple[str, str], list]:
    """(METHOD, path) -> security requirements of every route of the one HTTP API, read from the
    OpenAPI body SAM generates."""
    apis = of_type("AWS::ApiGatewayV2::Api")
    if len(apis) != 1:
        raise ValueError(f"expected one HTTP API, found {len(apis)}")
    body = next(iter(apis.values()))["Properties"]["Body"]
    return {
        (method.upper(), path): operation.get("security", [])
        for path, operations in body.get("paths", {}).items()
        for method, operation in operations.items()
        if isinstance(operation, dict)
    }


def http_api_body() -> dict:
    return next(iter(of_type("AWS::ApiGatewayV2::Api").values()))["Properties"]["Body"]


@check("the claim routes take the rider's OpenID token: POST and DELETE /racers/{racerId}/claim use a JWT "
       f"authorizer (issuer {COGNITO_IDENTITY_ISSUER}, audience exactly the identity pool, token from "
       "the Authorization header); GET and every other route are open; no IAM authorization")
def claim_routes() -> list[str]:
    routes = http_routes()
    schemes = http_api_body().get("components", {}).get("securitySchemes", {})
    problems = []
    authorized: dict[tuple[str, str], set[str]] = {}
    for route, security in sorted(routes.items()):
        names = {name for requirement in security for name in requirement}
        if names:
            authorized[route] = names
    for route in sorted(CLAIM_ROUTES):
        if route not in routes:
            problems.append(f"{route} is not a route")
        elif route not in authorized:
            problems.append(f"{route} has no authorizer")
    for route in sorted(set(authorized) - CLAIM_ROUTES):
        problems.append(f"{route} has authorizers {sorted(authorized[route])}, but only the claim routes should")
    if ("GET", CLAIM_PATH) not in routes:
        problems.append(f"GET {CLAIM_PATH} is not a route")
    for route, names in sorted(authorized.items()):
        if route not in CLAIM_ROUTES:
            continue
        if len(names) != 1:
            problems.append(f"{route}: authorizers {sorted(names)}, expected exactly one")
        for name in sorted(names):
            scheme = schemes.get(name, {})
            authorizer = scheme.get("x-amazon-apigateway-authorizer", {})
            jwt = authorizer.get("jwtConfiguration", {})
            if scheme.get("type") != "oauth2" or authorizer.get("type") != "jwt":
                problems.append(f"{route}: authorizer {name} is not a JWT authorizer ({scheme})")
                continue
            if jwt.get("issuer") != COGNITO_IDENTITY_ISSUER:
                problems.append(f"{route}: {name} trusts issuer {jwt.get('issuer')!r}, expected {COGNITO_IDENTITY_ISSUER}")
            audience = [render(a) for a in as_list(jwt.get("audience", []))]
            if audience != ["<IdentityPool>"]:
                problems.append(f"{route}: {name} accepts audience {audience}, expected exactly ['<IdentityPool>']")
            if authorizer.get("identitySource") != BEARER_SOURCE:
                problems.append(f"{route}: {name} reads the token from {authorizer.get('identitySource')!r}, expected {BEARER_SOURCE}")
    for name, scheme in sorted(schemes.items()):
        if scheme.get("x-amazon-apigateway-authtype") == "awsSigv4":
            problems.append(f"security scheme {name} is IAM (SigV4) authorization, which the guests' credentials cannot pass")
    return problems


@check("the API's CORS lets browsers send claims (GET, POST, DELETE; exactly the headers authorization and content-type)")
def claim_cors() -> list[str]:
    cors = http_api_body().get("x-amazon-apigateway-cors", {})
    problems = []
    methods = {m.upper() for m in cors.get("allowMethods", [])}
    for method in sorted({"GET", "POST", "DELETE", "OPTIONS"} - methods):
        problems.append(f"CORS does not allow {method}")
    headers = {h.lower() for h in cors.get("allowHeaders", [])}
    for header in sorted(CLAIM_HEADERS - headers):
        problems.append(f"CORS does not allow header {header}")
    for header in sorted(headers - CLAIM_HEADERS):
        problems.append(f"CORS allows header {header}, which no request of the page sends")
    return problems


def function_statements(binary: str) -> list[dict]:
    """Allow statements of the role of the function built from `binary`."""
    (name,) = [n for b, n in six_functions().items() if b == binary]
    role = render(RESOURCES[name]["Properties"]["Role"]).strip("<>").split(".")[0]
    return [
        s
        for policy in RESOURCES[role]["Properties"].get("Policies", [])
        for s in statements(policy["PolicyDocument"])
        if s.get("Effect") == "Allow"
    ]


def allows(binary: str, action: str, resource: str) -> list[dict]:
    """The conditions of every statement of the function's role allowing `action` on `resource`."""
    return [
        s.get("Condition", {})
        for s in function_statements(binary)
        if action in as_list(s.get("Action", [])) and resource in {render(r) for r in as_list(s.get("Resource", []))}
    ]


@check("the api reads claims and writes them only under racer# keys (GetItem, BatchGetItem; PutItem, DeleteItem)")
def api_claims() -> list[str]:
    problems = []
    for action in ("dynamodb:GetItem", "dynamodb:BatchGetItem"):
        if {} not in allows("api", action, "<Table.Arn>"):
            problems.append(f"api may not {action} on the table (claims are read in batches)")
    for action in ("dynamodb:PutItem", "dynamodb:DeleteItem"):
        conditions = allows("api", action, "<Table.Arn>")
        if not conditions:
            problems.append(f"api may not {action} on the table")
        for condition in conditions:
            keys = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
            if as_list(keys) != ["racer#*"]:
                problems.append(f"api's {action} is not limited to racer# partition keys: {condition}")
    return problems


@check("race-aggregator, leaderboard-writer and history-merger may read claims (GetItem, BatchGetItem)")
def consumers_read_claims() -> list[str]:
    return [
        f"{binary} may not {action} on the table"
        for binary in ("race-aggregator", "leaderboard-writer", "history-merger")
        for action in ("dynamodb:GetItem", "dynamodb:BatchGetItem")
        if {} not in allows(binary, action, "<Table.Arn>")
    ]


@check("every bucket blocks public access, is encrypted and denies requests without TLS")
def buckets() -> list[str]:
    problems = []
    policies = {
        render(p["Properties"]["Bucket"]).strip("<>"): p["Properties"]["PolicyDocument"]
        for p in of_type("AWS::S3::BucketPolicy").values()
    }
    flags = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    for name, bucket in of_type("AWS::S3::Bucket").items():
        props = bucket.get("Properties", {})
        block = props.get("PublicAccessBlockConfiguration", {})
        for flag in flags:
            if block.get(flag) is not True:
                problems.append(f"{name}: {flag} is not true")
        if not props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration"):
            problems.append(f"{name}: no default encryption")
        if props.get("AccessControl") not in (None, "Private"):
            problems.append(f"{name}: AccessControl {props['AccessControl']}")
        if props.get("OwnershipControls", {}).get("Rules", [{}])[0].get("ObjectOwnership") != "BucketOwnerEnforced":
            problems.append(f"{name}: ACLs not disabled (ObjectOwnership BucketOwnerEnforced)")
        denies_plain_http = any(
            s.get("Effect") == "Deny"
            and s.get("Principal") == "*"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            and {render(r) for r in as_list(s.get("Resource"))} == {f"<{name}.Arn>", f"<{name}.Arn>/*"}
            for s in statements(policies.get(name))
        )
        if not denies_plain_http:
            problems.append(f"{name}: no bucket policy denying aws:SecureTransport=false")
        for statement in statements(policies.get(name)):
            if statement.get("Effect") == "Allow" and statement.get("Principal") in ("*", {"AWS": "*"}):
                problems.append(f"{name}: bucket policy allows everyone")
    return problems


def cargo_bins() -> dict[str, str]:
    """Binary name -> package directory, from functions/*/Cargo.toml."""
    bins = {}
    for manifest in sorted(ROOT.glob("functions/*/Cargo.toml")):
        for name in re.findall(r'\[\[bin\]\]\s*\nname\s*=\s*"([^"]+)"', manifest.read_text()):
            bins[name] = manifest.parent.name
    return bins


def lambda_build_functions() -> list[str]:
    """The packages scripts/lambda-build builds (its FUNCTIONS), in order."""
    listed = re.search(r"^FUNCTIONS=\(([^)]*)\)", (ROOT / "scripts/lambda-build").read_text(), re.M)
    return listed.group(1).split() if listed else []


def make_targets() -> dict[str, str]:
    """Logical id -> the function deploy/Makefile's `build-<LogicalId>` target copies, read from
    its recipe (`$(LAMBDA_BUILD) --bootstrap <function> "$(ARTIFACTS_DIR)"`)."""
    text = (ROOT / MAKEFILE_DIR / "Makefile").read_text()
    return dict(re.findall(r'^build-(\w+):[ \t]*\n\t\$\(LAMBDA_BUILD\) --bootstrap ([\w-]+) "\$\(ARTIFACTS_DIR\)"[ \t]*$', text, re.M))


@check("the six functions are built from their workspace binaries (provided.al2023, arm64) by deploy/Makefile, "
       "each target copying its function's bootstrap from the test command's one build (scripts/lambda-build)")
def function_builds() -> list[str]:
    problems = []
    bins = cargo_bins()
    targets = make_targets()
    built = {}
    for name, resource in SAM["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function" or "InlineCode" in resource.get("Properties", {}):
            continue
        metadata = resource.get("Metadata", {})
        if metadata.get("BuildMethod") != "makefile":
            problems.append(f"{name}: BuildMethod {metadata.get('BuildMethod')}, expected makefile (deploy/Makefile)")
        if resource["Properties"].get("CodeUri") != MAKEFILE_DIR:
            problems.append(f"{name}: CodeUri {resource['Properties'].get('CodeUri')!r}, expected {MAKEFILE_DIR!r}")
        binary = targets.get(name)
        if binary is None:
            problems.append(f"{name}: deploy/Makefile has no target build-{name} running $(LAMBDA_BUILD) --bootstrap")
            continue
        if binary not in bins:
            problems.append(f"{name}: binary {binary!r} is not a [[bin]] of functions/*")
        built[binary] = name
    if set(built) != set(FUNCTION_ENV):
        problems.append(f"functions built {sorted(built)}, expected {sorted(FUNCTION_ENV)}")
    for unused in sorted(set(targets) - set(built.values())):
        problems.append(f"deploy/Makefile: target build-{unused} builds no function of the template")
    if sorted(lambda_build_functions()) != sorted(FUNCTION_ENV):
        problems.append(f"scripts/lambda-build builds {lambda_build_functions()}, expected {sorted(FUNCTION_ENV)}")
    test_script = "\n".join(l for l in (ROOT / "scripts/test").read_text().splitlines() if not l.lstrip().startswith("#"))
    if "bash scripts/lambda-build" not in test_script or "cargo lambda build" in test_script:
        problems.append("scripts/test does not build the functions with scripts/lambda-build (the command sam build reuses)")
    for name, function in of_type("AWS::Lambda::Function").items():
        props = function["Properties"]
        if "ZipFile" in props.get("Code", {}):
            continue
        if props.get("Runtime") != "provided.al2023" or props.get("Architectures") != ["arm64"]:
            problems.append(f"{name}: {props.get('Runtime')} {props.get('Architectures')}")
        if props.get("Handler") != "bootstrap":
            problems.append(f"{name}: handler {props.get('Handler')}")
    return problems


@check("each function's environment is exactly what its Config::from_lookup reads")
def function_environments() -> list[str]:
    problems = []
    for binary, name in six_functions().items():
        resource = SAM["Resources"][name]
        if binary not in FUNCTION_ENV:
            continue
        variables = set(resource["Properties"].get("Environment", {}).get("Variables", {}))
        variables |= set((SAM.get("Globals", {}).get("Function", {}).get("Environment") or {}).get("Variables") or {})
        required, optional = FUNCTION_ENV[binary]
        optional = optional | set(SERVE_ENV)
        if "AWS_REGION" in variables:
            problems.append(f"{binary}: sets AWS_REGION, a reserved variable that Lambda sets itself")
            variables.discard("AWS_REGION")
        for missing in sorted(required - variables):
            problems.append(f"{binary}: required {missing} not set")
        for unknown in sorted(variables - required - optional):
            problems.append(f"{binary}: sets {unknown}, which it does not read")
    return problems


@check("every function's metrics carry the stack's name: Globals set STACK_NAME to it, which "
       "alleycat_aws::serve reads for the metrics' Stack dimension")
def stack_dimension() -> list[str]:
    problems = []
    variables = (SAM.get("Globals", {}).get("Function", {}).get("Environment") or {}).get("Variables") or {}
    for variable, value in SERVE_ENV.items():
        if variables.get(variable) != value:
            problems.append(f"Globals: {variable} is {variables.get(variable)}, expected {value}")
        source = crate_source(ROOT / "crates/alleycat-aws")
        if not re.search(rf'const {variable}: &str = "{variable}";', source) or f"env_var({variable})" not in source:
            problems.append(f"crates/alleycat-aws no longer reads {variable} (const {variable}, env_var({variable}))")
        if "with_stack(" not in source:
            problems.append("crates/alleycat-aws never calls Metrics::with_stack")
    for binary, name in six_functions().items():
        own = SAM["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {})
        for variable in sorted(set(own) & set(SERVE_ENV)):
            problems.append(f"{binary}: sets {variable} itself, overriding Globals")
    return problems


@check("the table's keys and indexes are those of crates/alleycat-ports/src/keys.rs")
def table_schema() -> list[str]:
    source = (ROOT / "crates/alleycat-ports/src/keys.rs").read_text()
    const = dict(re.findall(r'pub const (\w+): &str = "([^"]*)";', source))
    pk, sk, gsi1, gsi1pk, gsi1sk, by_best, best = (
        const[k] for k in ("PK", "SK", "GSI1", "GSI1_PK", "GSI1_SK", "BY_BEST", "BEST")
    )
    tables = of_type("AWS::DynamoDB::Table")
    if len(tables) != 1:
        return [f"expected one table, found {len(tables)}"]
    props = next(iter(tables.values()))["Properties"]
    problems = []

    def keys(schema: list[dict]) -> list[tuple[str, str]]:
        return [(k["AttributeName"], k["KeyType"]) for k in schema]

    attributes = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    expected_attributes = {pk: "S", sk: "S", gsi1pk: "S", gsi1sk: "N", best: "N"}
    if attributes != expected_attributes:
        problems.append(f"attributes {attributes}, expected {expected_attributes}")
    if keys(props["KeySchema"]) != [(pk, "HASH"), (sk, "RANGE")]:
        problems.append(f"key schema {keys(props['KeySchema'])}")
    gsis = {i["IndexName"]: keys(i["KeySchema"]) for i in props.get("GlobalSecondaryIndexes", [])}
    if gsis != {gsi1: [(gsi1pk, "HASH"), (gsi1sk, "RANGE")]}:
        problems.append(f"global indexes {gsis}")
    lsis = {i["IndexName"]: keys(i["KeySchema"]) for i in props.get("LocalSecondaryIndexes", [])}
    if lsis != {by_best: [(pk, "HASH"), (best, "RANGE")]}:
        problems.append(f"local indexes {lsis}")
    if props.get("BillingMode") != "PAY_PER_REQUEST":
        problems.append("not on-demand")
    if props.get("StreamSpecification", {}).get("StreamViewType") != "NEW_AND_OLD_IMAGES":
        problems.append("stream is not NEW_AND_OLD_IMAGES")
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
        problems.append("point-in-time recovery is off")
    return problems


@check(f"the table expires items by TTL on `{TTL_ATTRIBUTE}` (claims)")
def table_ttl() -> list[str]:
    (table,) = of_type("AWS::DynamoDB::Table").values()
    ttl = table["Properties"].get("TimeToLiveSpecification")
    expected = {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    return [] if ttl == expected else [f"TimeToLiveSpecification {ttl}, expected {expected}"]


@check("the clock skew, racers-per-race cap and claim lifetime reach exactly their functions, from their parameters")
def trust_settings() -> list[str]:
    problems = []
    for variable, (parameter, expected) in sorted(TRUST_SETTINGS.items()):
        if parameter not in SAM.get("Parameters", {}):
            problems.append(f"no parameter {parameter}")
        setting = {}
        for binary, name in six_functions().items():
            variables = SAM["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {})
            if variable in variables:
                setting[binary] = variables[variable]
        for binary in sorted(expected - set(setting)):
            problems.append(f"{binary}: {variable} not set")
        for binary in sorted(set(setting) - expected):
            problems.append(f"{binary}: sets {variable}, which is not its setting")
        for binary, value in sorted(setting.items()):
            if value != {"Ref": parameter}:
                problems.append(f"{binary}: {variable} is {value}, expected !Ref {parameter}")
    return problems


@check("a setting shared by several functions comes from one parameter in all of them")
def shared_settings() -> list[str]:
    sources: dict[str, dict[str, str]] = {}
    for binary, name in six_functions().items():
        for variable, value in SAM["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {}).items():
            if isinstance(value, dict) and value.get("Ref") in SAM.get("Parameters", {}):
                sources.setdefault(variable, {})[binary] = value["Ref"]
    return [
        f"{variable} comes from different parameters: {by_function}"
        for variable, by_function in sorted(sources.items())
        if len(set(by_function.values())) > 1
    ]


def stream_mappings() -> dict[str, dict]:
    """The event source mappings of streams (Kinesis, DynamoDB): those with a starting position."""
    return {n: m for n, m in of_type("AWS::Lambda::EventSourceMapping").items() if "StartingPosition" in m["Properties"]}


def queue_mappings() -> dict[str, dict]:
    """The event source mappings of SQS queues."""
    return {n: m for n, m in of_type("AWS::Lambda::EventSourceMapping").items() if "StartingPosition" not in m["Properties"]}


@check("stream triggers report partial batch failures and write given-up batches (metadata and records) to "
       "FailedBatchesBucket, which keeps them 14 days and announces each on the failure queue; each stream "
       "function may write there")
def stream_triggers() -> list[str]:
    problems = []
    mappings = stream_mappings()
    if len(mappings) != 3:
        problems.append(f"expected 3 stream triggers, found {len(mappings)}")
    for name, mapping in mappings.items():
        props = mapping["Properties"]
        for key in ("BatchSize", "MaximumBatchingWindowInSeconds", "ParallelizationFactor",
                    "MaximumRetryAttempts", "MaximumRecordAgeInSeconds"):
            if key not in props:
                problems.append(f"{name}: {key} not set")
        if props.get("BisectBatchOnFunctionError") is not True:
            problems.append(f"{name}: BisectBatchOnFunctionError is not true")
        if props.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
            problems.append(f"{name}: FunctionResponseTypes {props.get('FunctionResponseTypes')}")
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if render(destination) != "<FailedBatchesBucket.Arn>":
            problems.append(f"{name}: on-failure destination {render(destination)}, expected FailedBatchesBucket "
                            "(an S3 destination keeps the batch's records, not only their sequence numbers)")
        function = render(props["FunctionName"]).strip("<>")
        binary = {n: b for b, n in six_functions().items()}.get(function)
        if binary is None:
            problems.append(f"{name}: triggers {function}, which is not one of the six functions")
        else:
            if {} not in allows(binary, "s3:PutObject", "<FailedBatchesBucket.Arn>/*"):
                problems.append(f"{binary}: may not s3:PutObject into FailedBatchesBucket (its on-failure destination)")
            if {} not in allows(binary, "s3:ListBucket", "<FailedBatchesBucket.Arn>"):
                problems.append(f"{binary}: may not s3:ListBucket FailedBatchesBucket (Lambda's S3 destination needs it)")
    bucket = RESOURCES.get("FailedBatchesBucket", {}).get("Properties", {})
    notices = [q for q in bucket.get("NotificationConfiguration", {}).get("QueueConfigurations", [])]
    if [(q.get("Event"), render(q.get("Queue"))) for q in notices] != [("s3:ObjectCreated:*", "<FailureQueue.Arn>")]:
        problems.append(f"FailedBatchesBucket does not announce every object on FailureQueue: {notices}")
    expiries = [r.get("ExpirationInDays") for r in bucket.get("LifecycleConfiguration", {}).get("Rules", []) if r.get("Status") == "Enabled"]
    retention_days = RESOURCES.get("FailureQueue", {}).get("Properties", {}).get("MessageRetentionPeriod", 0) / 86400
    if retention_days not in expiries:
        problems.append(f"FailedBatchesBucket keeps objects {expiries} days, the failure queue its notices {retention_days}")
    name_of = render(bucket.get("BucketName"))
    allowed = [
        s for s in statements(RESOURCES.get("FailureQueuePolicy", {}).get("Properties", {}).get("PolicyDocument"))
        if s.get("Effect") == "Allow" and s.get("Principal") == {"Service": "s3.amazonaws.com"}
        and s.get("Action") == "sqs:SendMessage"
    ]
    sources = [render(s.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn")) for s in allowed]
    if sources != [f"arn:aws:s3:::{name_of}"]:
        problems.append(f"FailureQueuePolicy lets S3 send from {sources}, expected only arn:aws:s3:::{name_of}")
    finals = [
        m for m in mappings.values()
        if render(m["Properties"]["FunctionName"]).startswith("<LeaderboardWriterFunction")
    ]
    patterns = [f["Pattern"] for m in finals for f in m["Properties"].get("FilterCriteria", {}).get("Filters", [])]
    if [json.loads(p) for p in patterns] != [{"data": {"event": ["final"]}}]:
        problems.append(f"leaderboard-writer filter {patterns}, expected only final events")
    return problems


@check("the history merger is bounded: S3 announces raw/ objects on MergeQueue (nothing invokes the merger "
       "asynchronously), which it reads in batches at most HistoryMergerMaxConcurrency (default 2) at a time, "
       "reporting the messages to retry; a message received 3 times moves to the failure queue")
def merger_bounded() -> list[str]:
    problems = []
    merger = six_functions().get("history-merger")
    triggers = [m["Properties"] for m in queue_mappings().values() if render(m["Properties"]["FunctionName"]) == f"<{merger}>"]
    if len(triggers) != 1:
        return [f"history-merger has {len(triggers)} queue triggers, expected 1"]
    (trigger,) = triggers
    if render(trigger.get("EventSourceArn")) != "<MergeQueue.Arn>":
        problems.append(f"history-merger reads {render(trigger.get('EventSourceArn'))}, expected MergeQueue")
    if trigger.get("ScalingConfig") != {"MaximumConcurrency": {"Ref": "HistoryMergerMaxConcurrency"}}:
        problems.append(f"history-merger's ScalingConfig {trigger.get('ScalingConfig')}")
    parameter = SAM.get("Parameters", {}).get("HistoryMergerMaxConcurrency", {})
    if parameter.get("Default") != 2 or parameter.get("MinValue") != 2:
        problems.append(f"HistoryMergerMaxConcurrency {parameter}, expected default 2 (Lambda's minimum)")
    if trigger.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
        problems.append(f"history-merger's trigger FunctionResponseTypes {trigger.get('FunctionResponseTypes')}")
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::Lambda::Permission" and render(resource["Properties"].get("FunctionName")).startswith(f"<{merger}"):
            problems.append(f"{name}: {resource['Properties'].get('Principal')} may invoke history-merger directly")
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig" and render(resource["Properties"].get("FunctionName")).startswith(f"<{merger}"):
            problems.append(f"{name}: history-merger is invoked asynchronously")
    queue = RESOURCES.get("MergeQueue", {}).get("Properties", {})
    redrive = queue.get("RedrivePolicy", {})
    if render(redrive.get("deadLetterTargetArn")) != "<FailureQueue.Arn>" or not 1 <= redrive.get("maxReceiveCount", 0) <= 5:
        problems.append(f"MergeQueue's redrive {redrive}, expected the failure queue after a few receives")
    timeout = RESOURCES[merger]["Properties"].get("Timeout", 3)
    if queue.get("VisibilityTimeout", 30) < 6 * timeout:
        problems.append(f"MergeQueue's visibility timeout {queue.get('VisibilityTimeout')} s is under 6 x the merger's {timeout} s")
    if not SAM["Resources"].get("MergeQueue", {}).get("Properties", {}).get("SqsManagedSseEnabled"):
        problems.append("MergeQueue is not encrypted (SqsManagedSseEnabled)")
    bucket = RESOURCES.get("DeliveryBucket", {}).get("Properties", {})
    notifications = bucket.get("NotificationConfiguration", {})
    expected = [{
        "Event": "s3:ObjectCreated:*",
        "Queue": {"Fn::GetAtt": ["MergeQueue", "Arn"]},
        "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "raw/"}]}},
    }]
    if notifications.get("QueueConfigurations") != expected or notifications.get("LambdaConfigurations"):
        problems.append(f"DeliveryBucket notifications {notifications}, expected raw/ objects on MergeQueue only")
    allowed = [
        render(s.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn"))
        for s in statements(RESOURCES.get("MergeQueuePolicy", {}).get("Properties", {}).get("PolicyDocument"))
        if s.get("Effect") == "Allow" and s.get("Principal") == {"Service": "s3.amazonaws.com"}
    ]
    if allowed != [f"arn:aws:s3:::{render(bucket.get('BucketName'))}"]:
        problems.append(f"MergeQueuePolicy lets S3 send from {allowed}, expected only the delivery bucket")
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        if {} not in allows("history-merger", action, "<MergeQueue.Arn>"):
            problems.append(f"history-merger may not {action} on MergeQueue")
    return problems


# ------------------------------------------------------------------------------------------------
# The dashboard, and the alarms that link to it
# ------------------------------------------------------------------------------------------------

# What every alarm's description links to, the dashboard's name appended.
DASHBOARD_LINK = "https://REGION.console.aws.amazon.com/cloudwatch/home?region=REGION#dashboards/dashboard/"


def crate_source(crate: Path) -> str:
    """A crate's src/ without its unit tests (each file cut at `#[cfg(test)] mod …`)."""
    texts = []
    for path in sorted((crate / "src").rglob("*.rs")):
        texts.append(re.split(r"#\[cfg\(test\)\]\s*mod\s", path.read_text())[0])
    return "\n".join(texts)


# A metric's declaration: `const NAME: Metric = Metric::count("Name")` (or `::bytes`).
METRIC_DECLARATION = r'const (\w+): Metric = Metric::(?:count|bytes)\(\s*"([^"]+)"\s*\)'


def emitted_metrics() -> dict[str, set[str]]:
    """Each function's `Function` dimension (its `Function::NAME`) -> the metrics it emits: every
    `Metric` its crate declares (functions/*/src/metric.rs) and those it takes from
    `alleycat_lambda::metrics`, read from the sources so that the dashboard cannot drift from
    the code."""
    shared = dict(re.findall(METRIC_DECLARATION, crate_source(ROOT / "crates/alleycat-lambda")))
    emitted = {}
    for manifest in sorted(ROOT.glob("functions/*/Cargo.toml")):
        source = crate_source(manifest.parent)
        name = re.search(r"const NAME: &'static str = ([^;]+);", source)
        if not name:
            raise ValueError(f"{manifest.parent.name}: no `const NAME` (alleycat_lambda::Function)")
        value = name.group(1).strip()
        if not value.startswith('"'):
            value = re.search(rf'const {re.escape(value)}: &str = ("[^"]*");', source).group(1)
        names = {metric for _, metric in re.findall(METRIC_DECLARATION, source)}
        for used in re.findall(r"use alleycat_lambda::metrics::\{?([^};]*)\}?;", source):
            for constant in filter(None, (c.strip() for c in used.split(","))):
                if constant not in shared:
                    raise ValueError(f"{manifest.parent.name}: alleycat_lambda::metrics::{constant} is not a metric")
                names.add(shared[constant])
        if not names:
            raise ValueError(f"{manifest.parent.name}: declares no metrics")
        emitted[value.strip('"')] = names
    return emitted


def dashboard() -> tuple[str, dict, dict]:
    """(logical id, properties, body) of the one dashboard, its body substituted as `render` does
    (references become <Name> / <Name.Attr>, pseudo parameters REGION, STACK…) and parsed."""
    dashboards = of_type("AWS::CloudWatch::Dashboard")
    if len(dashboards) != 1:
        raise ValueError(f"expected one dashboard, found {len(dashboards)}")
    (name, resource), = dashboards.items()
    props = resource["Properties"]
    return name, props, json.loads(render(props["DashboardBody"]))


def expressions(body: dict) -> list[str]:
    """Every math, SEARCH or Metrics Insights expression the dashboard graphs."""
    return [
        part["expression"]
        for widget in body.get("widgets", [])
        if widget.get("type") == "metric"
        for line in widget.get("properties", {}).get("metrics", [])
        for part in line
        if isinstance(part, dict) and "expression" in part
    ]


def plotted(body: dict) -> list[tuple[str, str, dict[str, str], dict]]:
    """(namespace, metric, dimensions, widget properties) of every metric the dashboard graphs,
    with the "." shorthand (same as the line above) resolved; math and search expressions
    are left out."""
    found = []
    for widget in body.get("widgets", []):
        if widget.get("type") != "metric":
            continue
        props = widget.get("properties", {})
        previous: list = []
        for line in props.get("metrics", []):
            parts = line[:-1] if line and isinstance(line[-1], dict) else line
            if not parts:
                continue
            parts = [previous[i] if p == "." and i < len(previous) else p for i, p in enumerate(parts)]
            previous = parts
            namespace, metric, *dimensions = parts
            found.append((namespace, metric, dict(zip(dimensions[::2], dimensions[1::2])), props))
    return found


def six_functions() -> dict[str, str]:
    """Binary (the metrics' `Function` dimension) -> logical id of the function built from it."""
    return {
        binary: name
        for name, binary in make_targets().items()
        if SAM["Resources"].get(name, {}).get("Type") == "AWS::Serverless::Function"
    }


@check("the dashboard is named after the stack and region; its body is JSON once substituted, refers "
       "only to this template's resources, and lays its widgets out without overlap")
def dashboard_body() -> list[str]:
    name, props, body = dashboard()
    problems = []
    if render(props.get("DashboardName")) != "STACK-REGION":
        problems.append(f"{name}: DashboardName {render(props.get('DashboardName'))!r}, expected "
                        "${AWS::StackName}-${AWS::Region} (the name the alarms link to)")
    source = props["DashboardBody"].get("Fn::Sub")
    if not isinstance(source, str):
        problems.append(f"{name}: DashboardBody is not a plain !Sub string")
    else:
        for variable in re.findall(r"\$\{([^}!]+)\}", source):
            if variable not in PSEUDO and variable.split(".")[0] not in RESOURCES:
                problems.append(f"{name}: ${{{variable}}} is neither a pseudo parameter nor a resource")
    taken: dict[tuple[int, int], int] = {}
    for index, widget in enumerate(body.get("widgets", [])):
        x, y, width, height = (widget.get(k) for k in ("x", "y", "width", "height"))
        if not all(isinstance(v, int) for v in (x, y, width, height)) or x < 0 or y < 0 or x + width > 24:
            problems.append(f"widget {index}: position {x},{y} size {width}x{height} outside the 24-column grid")
            continue
        for cell in ((cx, cy) for cx in range(x, x + width) for cy in range(y, y + height)):
            if cell in taken:
                problems.append(f"widget {index} overlaps widget {taken[cell]} at {cell}")
                break
            taken[cell] = index
        if widget.get("type") == "metric" and widget["properties"].get("region") != "REGION":
            problems.append(f"widget {index}: region {widget['properties'].get('region')!r}, expected ${{AWS::Region}}")
    return problems


@check("the dashboard shows each function's Alleycat counters: exactly those its crate emits")
def dashboard_counters() -> list[str]:
    _, _, body = dashboard()
    shown: dict[str, set[str]] = {}
    problems = []
    for namespace, metric, dimensions, _ in plotted(body):
        if namespace != "Alleycat":
            continue
        if set(dimensions) != {"Function", "Stack"} or dimensions["Stack"] != "STACK":
            problems.append(f"Alleycat {metric}: dimensions {dimensions}, the functions emit Function and Stack (the stack's name)")
            continue
        shown.setdefault(dimensions["Function"], set()).add(metric)
    emitted = emitted_metrics()
    if set(emitted) != set(six_functions()):
        problems.append(f"functions emitting metrics {sorted(emitted)}, template functions {sorted(six_functions())}")
    for function, names in sorted(emitted.items()):
        if not names:
            problems.append(f"{function}: no counters found in its source (did METRICS move?)")
        for missing in sorted(names - shown.get(function, set())):
            problems.append(f"{function}: counter {missing} is not on the dashboard")
        for unknown in sorted(shown.get(function, set()) - names):
            problems.append(f"{function}: the dashboard shows {unknown}, which it does not emit")
    for unknown in sorted(set(shown) - set(emitted)):
        problems.append(f"the dashboard shows counters of {unknown!r}, which is no function")
    return problems


@check("the dashboard shows every function's invocations, errors, throttles and duration; the iterator "
       "age of each stream trigger; failed deliveries to the failure queue; the merger's event age")
def dashboard_functions() -> list[str]:
    _, _, body = dashboard()
    shown = {
        (metric, dimensions.get("FunctionName"))
        for namespace, metric, dimensions, _ in plotted(body)
        if namespace == "AWS/Lambda" and set(dimensions) == {"FunctionName"}
    }
    streams = {render(m["Properties"]["FunctionName"]) for m in stream_mappings().values()}
    asynchronous = {render(c["Properties"]["FunctionName"]) for c in of_type("AWS::Lambda::EventInvokeConfig").values()}
    destinations = {
        render(r["Properties"]["FunctionName"])
        for r in [*of_type("AWS::Lambda::EventSourceMapping").values(), *of_type("AWS::Lambda::EventInvokeConfig").values()]
        if r["Properties"].get("DestinationConfig", {}).get("OnFailure")
    }
    problems = []
    for binary, logical_id in sorted(six_functions().items()):
        ref = f"<{logical_id}>"
        expected = ["Invocations", "Errors", "Throttles", "Duration"]
        expected += ["IteratorAge"] if ref in streams else []
        expected += ["AsyncEventAge"] if ref in asynchronous else []
        expected += ["DestinationDeliveryFailures"] if ref in destinations else []
        for metric in expected:
            if (metric, ref) not in shown:
                problems.append(f"{binary}: AWS/Lambda {metric} of {logical_id} is not on the dashboard")
    return problems


@check("the dashboard shows the stream's iterator age, the failure queue's depth and age, Firehose's "
       "delivery freshness, and the metric of every alarm")
def dashboard_pipeline() -> list[str]:
    _, _, body = dashboard()
    shown = [(n, m, d) for n, m, d, _ in plotted(body)]
    required = [
        ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", {"StreamName": "<Stream>"}),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "<FailureQueue.QueueName>"}),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": "<FailureQueue.QueueName>"}),
        ("AWS/Firehose", "DeliveryToS3.DataFreshness", {"DeliveryStreamName": "<DeliveryStream>"}),
    ]
    problems = [f"{n} {m} {d} is not on the dashboard" for n, m, d in required if (n, m, d) not in shown]
    graphed = expressions(body)
    for name, alarm in sorted(of_type("AWS::CloudWatch::Alarm").items()):
        props = alarm["Properties"]
        if "Metrics" in props:
            # A query alarm: the dashboard graphs the very same expression.
            for query in props["Metrics"]:
                if render(query.get("Expression")) not in graphed:
                    problems.append(f"{name}: its expression {render(query.get('Expression'))!r} is not on the dashboard")
            continue
        metric = (
            props.get("Namespace"),
            props.get("MetricName"),
            {d["Name"]: render(d["Value"]) for d in props.get("Dimensions", [])},
        )
        if metric not in shown:
            problems.append(f"{name}: its metric {metric} is not on the dashboard")
    return problems


@check("the dashboard's alarm widget lists every alarm; every alarm's description and the DashboardUrl "
       "output link to the dashboard")
def alarms_link_dashboard() -> list[str]:
    name, props, body = dashboard()
    link = DASHBOARD_LINK + render(props.get("DashboardName"))
    alarms = of_type("AWS::CloudWatch::Alarm")
    problems = []
    listed = [a for w in body.get("widgets", []) if w.get("type") == "alarm" for a in w["properties"].get("alarms", [])]
    expected = {f"<{a}.Arn>" for a in alarms}
    for missing in sorted(expected - set(listed)):
        problems.append(f"alarm widget: {missing} not listed")
    for unknown in sorted(set(listed) - expected):
        problems.append(f"alarm widget: {unknown} is not an alarm of this template")
    for alarm_name, alarm in sorted(alarms.items()):
        description = render(alarm["Properties"].get("AlarmDescription", ""))
        if link not in description.split():
            problems.append(f"{alarm_name}: description does not link to {link}")
        # CloudWatch's limit, with the longest stack name (128) and region (14) substituted.
        longest = description.replace("STACK", "s" * 128).replace("REGION", "r" * 14)
        if len(longest) > 1024:
            problems.append(f"{alarm_name}: description can reach {len(longest)} characters (limit 1024)")
    output = render(CFN.get("Outputs", {}).get("DashboardUrl", {}).get("Value"))
    if output != DASHBOARD_LINK + f"<{name}>":
        problems.append(f"output DashboardUrl is {output!r}, expected {DASHBOARD_LINK}<{name}>")
    return problems


# ------------------------------------------------------------------------------------------------
# Data that outlives the stack, and IoT Core's logs
# ------------------------------------------------------------------------------------------------

# What cannot be rebuilt: the table (results, leaderboards, personal records) and the class
# histories (raw/ expires after RawDataRetentionDays).
RETAINED = ("Table", "HistoryBucket")


@check("the table and the history bucket survive the stack's deletion and their own replacement "
       "(DeletionPolicy and UpdateReplacePolicy Retain); the table has deletion protection and "
       "point-in-time recovery; the history bucket is versioned, previous versions expiring after "
       "HistoryVersionRetentionDays")
def data_retained() -> list[str]:
    problems = []
    for name in RETAINED:
        resource = RESOURCES.get(name, {})
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            if resource.get(policy) != "Retain":
                problems.append(f"{name}: {policy} {resource.get(policy)}, expected Retain")
    table = RESOURCES.get("Table", {}).get("Properties", {})
    if table.get("DeletionProtectionEnabled") is not True:
        problems.append("Table: DeletionProtectionEnabled is not true")
    if table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
        problems.append("Table: point-in-time recovery is off")
    bucket = RESOURCES.get("HistoryBucket", {}).get("Properties", {})
    if bucket.get("VersioningConfiguration") != {"Status": "Enabled"}:
        problems.append(f"HistoryBucket: versioning {bucket.get('VersioningConfiguration')}")
    expiries = [
        rule.get("NoncurrentVersionExpiration")
        for rule in bucket.get("LifecycleConfiguration", {}).get("Rules", [])
        if rule.get("Status") == "Enabled" and not rule.get("Prefix") and not rule.get("Filter")
    ]
    if {"NoncurrentDays": {"Ref": "HistoryVersionRetentionDays"}} not in expiries:
        problems.append(f"HistoryBucket: no bucket-wide rule expiring previous versions after "
                        f"HistoryVersionRetentionDays ({expiries})")
    return problems


@check("IoT Core logs rule failures (AWS::IoT::Logging at ERROR or WARN from IotLogLevel, unless off) "
       "through a role only IoT of this account assumes, allowed to write only AWSIotLogsV2")
def iot_logging() -> list[str]:
    problems = []
    parameter = SAM.get("Parameters", {}).get("IotLogLevel", {})
    if parameter.get("Default") not in ("ERROR", "WARN") or sorted(parameter.get("AllowedValues", [])) != ["ERROR", "WARN", "off"]:
        problems.append(f"IotLogLevel: {parameter}, expected default ERROR or WARN, values ERROR/WARN/off")
    loggings = of_type("AWS::IoT::Logging")
    if len(loggings) != 1:
        return problems + [f"expected one AWS::IoT::Logging, found {len(loggings)}"]
    (name, logging), = loggings.items()
    props = logging["Properties"]
    if props.get("DefaultLogLevel") != {"Ref": "IotLogLevel"}:
        problems.append(f"{name}: DefaultLogLevel {props.get('DefaultLogLevel')}")
    if render(props.get("AccountId")) != "ACCOUNT":
        problems.append(f"{name}: AccountId {render(props.get('AccountId'))}")
    condition = SAM.get("Conditions", {}).get(logging.get("Condition"))
    if condition != {"Fn::Not": [{"Fn::Equals": [{"Ref": "IotLogLevel"}, "off"]}]}:
        problems.append(f"{name}: condition {logging.get('Condition')} = {condition}")
    role_name = render(props.get("RoleArn")).strip("<>").split(".")[0]
    role = RESOURCES.get(role_name, {}).get("Properties", {})
    trust = statements(role.get("AssumeRolePolicyDocument"))
    if [s.get("Principal") for s in trust] != [{"Service": "iot.amazonaws.com"}] or not all(
        render(s.get("Condition", {}).get("StringEquals", {}).get("aws:SourceAccount")) == "ACCOUNT" for s in trust
    ):
        problems.append(f"{role_name}: trust {trust}")
    log_group = "arn:aws:logs:REGION:ACCOUNT:log-group:AWSIotLogsV2"
    for policy in role.get("Policies", []):
        for statement in statements(policy["PolicyDocument"]):
            for resource in as_list(statement.get("Resource")):
                if render(resource) not in (log_group, log_group + ":*"):
                    problems.append(f"{role_name}: allows {statement.get('Action')} on {render(resource)}")
    return problems


# Failures that are handled (reported inside a response, retried, sent to a destination), so that
# Lambda's Errors never counts them, each with the alarm that must watch it: the functions' own
# failure counters (namespace Alleycat, dimension Function: functions/*/src) and the services'
# failure metrics. A query alarm (Metrics Insights) is named by the metric and schema it sums.
FAILURE_COUNTERS = {
    "race-aggregator": ["FailedRaces"],
    "leaderboard-writer": ["Failed"],
    "publisher": ["PublishFailed"],
    "history-merger": ["MergeFailed", "ReadFailed"],
    "api": ["ServerErrors"],
}


def alarm_metric(props: dict) -> tuple[str, str, dict[str, str]]:
    """(namespace, metric, dimensions) an alarm watches; for a Metrics Insights query alarm, the
    summed metric, its schema's namespace and the WHERE equalities as dimensions."""
    if "Metrics" not in props:
        return (
            props.get("Namespace"),
            props.get("MetricName"),
            {d["Name"]: render(d["Value"]) for d in props.get("Dimensions", [])},
        )
    (query,) = [render(m.get("Expression")) for m in props["Metrics"] if m.get("ReturnData", True)]
    parsed = re.fullmatch(r'SELECT SUM\((\w+)\) FROM SCHEMA\("([^"]+)"(?:, *\w+)*\) WHERE (.*)', query)
    if not parsed:
        return (None, query, {})
    where = dict(re.findall(r"(\w+) = '([^']*)'", parsed.group(3)))
    return (parsed.group(2), parsed.group(1), where)


def required_alarms() -> list[tuple[str, str, dict[str, str]]]:
    """Every failure metric that must have an alarm (see FAILURE_COUNTERS)."""
    required = [
        ("Alleycat", counter, {"Function": function, "Stack": "STACK"})
        for function, counters in FAILURE_COUNTERS.items()
        for counter in counters
    ]
    for binary, logical_id in sorted(six_functions().items()):
        ref = {"FunctionName": f"<{logical_id}>"}
        required += [("AWS/Lambda", "Errors", ref), ("AWS/Lambda", "Throttles", ref)]
    for resource in [*of_type("AWS::Lambda::EventSourceMapping").values(), *of_type("AWS::Lambda::EventInvokeConfig").values()]:
        if resource["Properties"].get("DestinationConfig", {}).get("OnFailure"):
            function = render(resource["Properties"]["FunctionName"]).split(".")[0].rstrip(">") + ">"
            required.append(("AWS/Lambda", "DestinationDeliveryFailures", {"FunctionName": function}))
    for config in of_type("AWS::Lambda::EventInvokeConfig").values():
        function = render(config["Properties"]["FunctionName"]).split(".")[0].rstrip(">") + ">"
        required.append(("AWS/Lambda", "AsyncEventsDropped", {"FunctionName": function}))
    for rule in of_type("AWS::IoT::TopicRule"):
        for metric in ("RuleMessageThrottled", "ParseError", "Failure"):
            required.append(("AWS/IoT", metric, {"RuleName": f"<{rule}>"}))
    for table in of_type("AWS::DynamoDB::Table"):
        for metric in ("WriteThrottleEvents", "ReadThrottleEvents"):
            required.append(("AWS/DynamoDB", metric, {"TableName": f"<{table}>"}))
    # The failure queue: anything on it is a failure. A queue a function works from: its backlog.
    for metric in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"):
        required.append(("AWS/SQS", metric, {"QueueName": "<FailureQueue.QueueName>"}))
    for mapping in queue_mappings().values():
        queue = render(mapping["Properties"]["EventSourceArn"]).strip("<>").split(".")[0]
        required.append(("AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": f"<{queue}.QueueName>"}))
    return required


@check("every failure that matters has an alarm: the functions' failure counters (" +
       ", ".join(c for cs in FAILURE_COUNTERS.values() for c in cs) + "), each function's errors and "
       "throttles, failed deliveries to on-failure destinations, dropped S3 events, the IoT rule's "
       "throttles, parse errors and action failures, table throttles, the failure queue's depth and age")
def failure_alarms() -> list[str]:
    watched: dict[tuple, list[str]] = {}
    for name, alarm in of_type("AWS::CloudWatch::Alarm").items():
        namespace, metric, dimensions = alarm_metric(alarm["Properties"])
        watched.setdefault((namespace, metric, tuple(sorted(dimensions.items()))), []).append(name)
    problems = []
    emitted = emitted_metrics()
    for function, counters in FAILURE_COUNTERS.items():
        for counter in counters:
            if counter not in emitted.get(function, set()):
                problems.append(f"{function} no longer emits {counter}: update FAILURE_COUNTERS")
    for namespace, metric, dimensions in required_alarms():
        if (namespace, metric, tuple(sorted(dimensions.items()))) not in watched:
            problems.append(f"no alarm on {namespace} {metric} {dimensions}")
    for name, alarm in sorted(of_type("AWS::CloudWatch::Alarm").items()):
        props = alarm["Properties"]
        if props.get("ComparisonOperator") != "GreaterThanThreshold" or props.get("TreatMissingData") != "notBreaching":
            problems.append(f"{name}: fires on {props.get('ComparisonOperator')}, missing data {props.get('TreatMissingData')}")
        _, metric, _ = alarm_metric(props)
        is_count = metric not in ("ApproximateAgeOfOldestMessage", "IteratorAge", "GetRecords.IteratorAgeMilliseconds",
                                  "DeliveryToS3.DataFreshness")
        if is_count and props.get("Threshold") != 0:
            problems.append(f"{name}: a failure count alarms only above {props.get('Threshold')}, expected the first (> 0)")
    return problems


@check("every alarm notifies the alarm topic (email to AlarmEmail), unless AlarmNotifications=off; a rule "
       "refuses to deploy with notifications on and no AlarmEmail")
def alarm_destination() -> list[str]:
    problems = []
    parameters = SAM.get("Parameters", {})
    notifications = parameters.get("AlarmNotifications", {})
    if notifications.get("Default") != "email" or sorted(notifications.get("AllowedValues", [])) != ["email", "off"]:
        problems.append(f"AlarmNotifications: {notifications}, expected default email, values email/off")
    if SAM.get("Conditions", {}).get("NotifyAlarms") != {"Fn::Equals": [{"Ref": "AlarmNotifications"}, "email"]}:
        problems.append(f"condition NotifyAlarms is {SAM.get('Conditions', {}).get('NotifyAlarms')}")
    rules = SAM.get("Rules", {})
    asserted = [
        (rule.get("RuleCondition"), assertion.get("Assert"))
        for rule in rules.values()
        for assertion in rule.get("Assertions", [])
    ]
    expected = (
        {"Fn::Equals": [{"Ref": "AlarmNotifications"}, "email"]},
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
    )
    if expected not in asserted:
        problems.append(f"no rule asserting AlarmEmail when AlarmNotifications=email: {rules}")
    topics = of_type("AWS::SNS::Topic")
    if list(topics) != ["AlarmTopic"]:
        problems.append(f"SNS topics {sorted(topics)}, expected AlarmTopic")
    else:
        topic = topics["AlarmTopic"]
        if topic.get("Condition") != "NotifyAlarms":
            problems.append(f"AlarmTopic's condition is {topic.get('Condition')}")
        subscriptions = topic["Properties"].get("Subscription", [])
        if subscriptions != [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]:
            problems.append(f"AlarmTopic subscriptions {subscriptions}")
    for name, alarm in sorted(of_type("AWS::CloudWatch::Alarm").items()):
        actions = alarm["Properties"].get("AlarmActions")
        if actions != {"Fn::If": ["NotifyAlarms", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}:
            problems.append(f"{name}: AlarmActions {actions}")
    return problems


@check("docs/deploy.md's table of alarms names every alarm of the template, and no other")
def alarms_documented() -> list[str]:
    text = (ROOT / "docs/deploy.md").read_text()
    documented = {
        name
        for cell in re.findall(r"^\| ((?:`\w+Alarm`(?:, )?)+) \|", text, re.M)
        for name in re.findall(r"`(\w+Alarm)`", cell)
    }
    alarms = set(of_type("AWS::CloudWatch::Alarm"))
    return [f"{a} is not in docs/deploy.md's alarm table" for a in sorted(alarms - documented)] + [
        f"docs/deploy.md documents {a}, which is no alarm of the template" for a in sorted(documented - alarms)
    ]


def main() -> int:
    failed = 0
    for description, fn in CHECKS:
        try:
            problems = fn()
        except Exception as error:  # a check that crashes fails, with the reason
            problems = [f"check crashed: {error!r}"]
        print(f"{'ok  ' if not problems else 'FAIL'} {description}")
        for problem in problems:
            print(f"       - {problem}")
        failed += bool(problems)
    print(f"template_test: {len(CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
