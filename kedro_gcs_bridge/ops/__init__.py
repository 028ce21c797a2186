"""Operations on run prefixes as a whole: finalize a DAG run, `runs list/gc`, a local emulator."""
