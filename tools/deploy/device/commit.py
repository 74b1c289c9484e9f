# commit.py: run on the board by tools/deploy (after `exec "_helix_commit = {...}"`),
# once every changed file has been copied as <path>.new. Moves each into place, removes
# stale files, prints one HELIX-COMMIT line. Short on purpose: this is the only step
# that changes what the board runs.
def _helix_commit_run(args):
    import os

    moved = 0
    for tmp, final in args["moves"]:
        try:
            os.remove(final)  # FAT cannot rename over an existing file
        except OSError:
            pass
        os.rename(tmp, final)
        moved += 1
    removed = 0
    for p in args["remove"]:
        try:
            os.remove(p)
            removed += 1
        except OSError:
            pass
    print("HELIX-COMMIT", moved, removed)


_helix_commit_run(_helix_commit)  # noqa: F821 - set by the exec before this file
del _helix_commit_run, _helix_commit  # noqa: F821
