# main.py: starts helix_ipc's system from the board profile (helix_app.py) on asyncio,
# with the serial link to the host served on the REPL line (helix_link.py), until
# Ctrl-C, which stops it cleanly (timers released) and leaves you at the REPL:
#   >>> import hx; hx.status()       the system at a glance
#   >>> hx.start()                   run it again in the background
# From the host: `mpremote resume exec "import hx; hx.status()"` (without `resume`,
# mpremote soft-resets the board first, and main.py does not run after a soft reset).
import helix_app
import helix_link

helix_app.system.services.append(helix_link.serve)  # the serial link on the REPL line (docs/link.md)
helix_app.run(report_every_s=5)
