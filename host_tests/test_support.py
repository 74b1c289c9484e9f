# Tests of the test harness itself (support.py, _mp_runner.py board mode): board mode
# really hides sys.exc_info, and frame_alloc sees heap-allocated frames that heap_lock
# cannot. Runs as test_x[cpython], [micropython] and [board], like every host test.
import sys

import support


def test_board_mode_hides_exc_info_exactly_when_flagged():
    import sys as visible

    assert hasattr(visible, "exc_info") != support.BOARD_MODE
    if support.BOARD_MODE:
        assert support.board_mode_problems() == []
        import helix_ipc._compat as compat

        if hasattr(compat, "sys"):
            assert not hasattr(compat.sys, "exc_info")
        # What a board does: code that wants exc_info cannot get it.
        support.raises(AttributeError, getattr, visible, "exc_info")
    else:
        assert support.board_mode_problems(load_library=False) != []


def test_board_mode_refuses_once_the_library_is_loaded():
    import helix_ipc  # noqa: F401 - loaded before: entering board mode now is an error

    before = sys.modules.get("sys")
    e = support.raises(RuntimeError, support.enter_board_mode)
    assert "before helix_ipc is imported" in str(e)
    assert sys.modules.get("sys") is before  # nothing changed


def _small(x):
    return x + 1


def _spills(x):
    # 13 locals + `except ... as e` (two exception blocks): a bytecode frame this big is
    # heap-allocated on every call on MicroPython.
    a = x + 1
    b = a + 1
    c = b + 1
    d = c + 1
    f = d + 1
    g = f + 1
    h = g + 1
    i = h + 1
    j = i + 1
    k = j + 1
    m = k + 1
    n = m + 1
    try:
        return n
    except ValueError as e:
        return e


def _allocates(x):
    return [x, x, x, x]


def test_frame_alloc_sees_heap_frames_and_objects():
    if not support.MICROPYTHON:
        support.raises(support.Skipped, support.frame_alloc, _small, 1)
        support.skip("frame_alloc counts with micropython.mem_total (MicroPython only)")
    assert support.frame_alloc(_small, 1) == 0
    assert support.frame_alloc(_spills, 1) >= 64  # the frame, on the heap, every call
    assert support.frame_alloc(_allocates, 1) >= 32  # a 4-item list
    assert support.frame_alloc(_small, 1) == 0  # and nothing left over from the above
    support.raises(ValueError, support.frame_alloc, _small, 1, 2, 3, 4)
