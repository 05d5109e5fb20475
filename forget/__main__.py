from forget.cli import main

main()
