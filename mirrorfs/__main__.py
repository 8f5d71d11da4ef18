from mirrorfs.console import main

main()
