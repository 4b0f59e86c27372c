"""The collection never runs v3_mem_reset: it drops every Palacios pool and loses memory offlined
with v3_mem -a (interface spec, observed item 18). Static half: no code in plugins/, roles/ or
playbooks/ names the tool except the facts' list of tools it looks up (never runs) and module
documentation (which says why there is no reset). The runtime
half is in tests/integration/test_targets.py (the simulator's tools.log of every target)."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SIMULATOR = os.path.join(ROOT, 'roles', 'simulator', 'files', 'v3sim.py')
TOOL = 'v3_mem_reset'


def files(*tops):
    for top in tops:
        for directory, _dirs, names in os.walk(os.path.join(ROOT, top)):
            for name in names:
                path = os.path.join(directory, name)
                if path != SIMULATOR and not name.endswith('.md'):
                    yield path


def constants(tree):
    """(string constant, name of the assignment target it sits in, or None)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    yield sub.value, [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.Call):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    yield sub.value, None


def test_no_code_names_v3_mem_reset_except_the_facts_tool_list():
    found, named = [], []
    for path in files('plugins', 'roles', 'playbooks'):
        with open(path, 'rb') as handle:
            data = handle.read()
        if TOOL.encode() not in data:
            continue
        named.append(os.path.relpath(path, ROOT))
        if not path.endswith('.py'):
            found.append((os.path.relpath(path, ROOT), 'text'))
            continue
        for value, targets in constants(ast.parse(data)):
            if TOOL in value and targets not in (['FACT_TOOLS'], ['DOCUMENTATION']):
                found.append((os.path.relpath(path, ROOT), value))
    assert found == []
    assert os.path.join('plugins', 'module_utils', 'facts.py') in named      # the scan did read them


def test_the_facts_list_is_never_handed_to_a_tool_run():
    """FACT_TOOLS is only looked up (Tools.find), never run."""
    path = os.path.join(ROOT, 'plugins', 'module_utils', 'facts.py')
    tree = ast.parse(open(path).read())
    uses = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == 'FACT_TOOLS']
    assert len(uses) == 3                             # assignment, the loop, the missing list
    calls = [node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr in ('run', 'which', 'find')]
    assert calls == ['find']


def test_the_static_check_sees_a_tool_argv_and_a_constant():
    """The scan above can fail: an argv naming the tool, or a constant holding it, is found."""
    assert ('v3_mem_reset', None) in list(constants(ast.parse("tools.run('v3_mem_reset', ['-f'])\n")))
    assert ('v3_mem_reset', ['RESET']) in list(constants(ast.parse("RESET = ('v3_mem_reset', '-f')\n")))
