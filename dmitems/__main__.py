from dmitems.cli import main

main()
