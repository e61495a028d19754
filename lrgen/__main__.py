from lrgen.cli import main

main()
