from moltbot.cli.main import main

main()
