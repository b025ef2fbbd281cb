from kdgan.cli import main

main()
