import pytest

from nasengine.errors import NasError
from nasengine.spaces.cell import SPACES_DIR, load_space, space_names


def test_builtin_spaces_load_by_name_and_path(tmp_path):
    assert {"nasnet", "pnasnet", "darts", "nasbench201"} <= set(space_names())
    nasnet = load_space("nasnet")
    assert len(nasnet.ops) == 13 and nasnet.nodes == 5 and nasnet.cells == ("normal", "reduce")
    assert len(load_space("pnasnet").ops) == 8 and load_space("pnasnet").cells == ("normal",)
    darts = load_space("darts")
    assert darts.zero_op == "none" and "none" not in darts.sample_ops
    copy = tmp_path / "mine.yaml"
    nasnet_path = SPACES_DIR / "nasnet.yaml"
    copy.write_text(nasnet_path.read_text()
                    .replace("nodes: 5", "nodes: 3").replace("name: nasnet", "name: mine"))
    mine = load_space(str(copy))
    assert mine.name == "mine" and mine.nodes == 3
    assert nasnet_path.is_file()


def test_nasbench201_has_15625_cells():
    space = load_space("nasbench201")
    assert len(space.ops) ** 6 == 15625
    assert sum(1 for k in space.param_choices() if "/op" in k) == 6


@pytest.mark.parametrize("content, message", [
    ("name: x\nops: [identity]\nnodes: -1\n", "'nodes' must be a positive integer"),
    ("name: x\nops: []\n", "'ops' must be a non-empty list"),
    ("name: x\nops: [identity]\ncolour: red\n", "unknown key(s) colour"),
    ("ops: [identity]\n", "missing key 'name'"),
    ("name: x\nops: [identity]\nzero_op: none\n", "zero_op 'none' is not among the ops"),
    ("name: [x\n", "not valid YAML"),
])
def test_malformed_space_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(NasError) as info:
        load_space(str(path))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_space_lists_the_known_ones():
    with pytest.raises(NasError, match="unknown search space 'nope' .*nasnet"):
        load_space("nope")
