# manifest.py: freeze helix_ipc into your own MicroPython build.
# In your board's manifest: include("<path to this repo>/firmware/manifest.py")
# (add `options.firmware = True` before it to freeze the example firmware as well).
metadata(
    description="helix_ipc: event bus, message router and channels for MicroPython",
    version="0.1.0",
    license="MIT",
)
options.defaults(firmware=False)
package("helix_ipc", base_path="../lib", opt=3)
if options.firmware:
    module("helix_app.py", opt=3)
    module("helix_examples.py", opt=3)
    module("hx.py", opt=3)
    module("helix_link.py", opt=3)
    module("helix_link_cdc.py", opt=3)  # only imported with the profile's link_usb_cdc
    module("helix_link_uart.py", opt=3)  # only imported with the profile's link_uart
