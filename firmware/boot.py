# boot.py: runs first at every reset. Nothing heavy here, so that a broken main.py
# never locks you out of the REPL: main.py starts the system.
import gc

gc.collect()
