# main.py: starts helix_ipc's system from the board profile (helix_app.py) and services
# it until Ctrl-C, which stops it cleanly (timers released) and leaves you at the REPL:
#   >>> import hx; hx.status()       the system at a glance
#   >>> hx.start()                   run it again in the background
# From the host: `mpremote resume exec "import hx; hx.status()"` (without `resume`,
# mpremote soft-resets the board first, and main.py does not run after a soft reset).
import helix_app

helix_app.run(report_every_s=5)
