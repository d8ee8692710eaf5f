from wuyiqu.cli import main

main()
