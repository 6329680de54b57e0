import sys

from tether.cli.main import main

main(sys.argv[1:])
