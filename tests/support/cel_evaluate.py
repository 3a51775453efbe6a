"""Evaluates a ValidatingAdmissionPolicy's CEL (matchConditions, variables, validations)
on admission requests, with cel-python (a CEL implementation independent of this
project). Run by the interpreter of the venv tests/support/cel_venv.py builds; reads
{"policy": spec, "cases": {name: {"user": ..., "object": ...}}} as JSON on stdin and
prints {name: "not matched" | [messages of failed validations]}."""

import json
import sys

import celpy


def evaluate(env, expression, activation):
    return env.program(env.compile(expression)).evaluate(activation)


def review(spec, user, obj):
    env = celpy.Environment()
    activation = {
        "object": celpy.json_to_cel(obj),
        "request": celpy.json_to_cel({"userInfo": {"username": user}}),
    }
    for condition in spec.get("matchConditions", []):
        if not bool(evaluate(env, condition["expression"], activation)):
            return "not matched"
    variables = {}
    for variable in spec.get("variables", []):
        scope = dict(activation, variables=celpy.celtypes.MapType(variables))
        variables[celpy.celtypes.StringType(variable["name"])] = evaluate(
            env, variable["expression"], scope
        )
    scope = dict(activation, variables=celpy.celtypes.MapType(variables))
    failed = []
    for validation in spec["validations"]:
        result = evaluate(env, validation["expression"], scope)
        if not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            failed.append(validation["message"])
    return failed


def main():
    data = json.load(sys.stdin)
    out = {
        name: review(data["policy"], case["user"], case["object"])
        for name, case in data["cases"].items()
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
