"""A module's documentation as data (the YAML of its DOCUMENTATION, EXAMPLES or RETURN), read
from the source without importing it, for the tests that keep docs and code equal."""
import ast
import os

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..')


def literal(path, name):
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == name:
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError('%s has no %s' % (path, name))


def module_doc(module, name='DOCUMENTATION'):
    return literal(os.path.join(ROOT, 'plugins', 'modules', module + '.py'), name)
