"""Server-rendered pages. Each module defines `bp`; views parse input, call one service, render."""
