"""Train one configuration, or sweep many with -m: `python train.py optimizer=rootfree_adam`.
The same app as the ``rootfree-train`` command."""

from rootfree.train.cli import main

if __name__ == "__main__":
    main()
