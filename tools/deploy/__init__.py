# tools.deploy: `make deploy` / `make repl` (see deploy.py; device/ holds the code it runs on the board).
