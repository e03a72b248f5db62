//! Never built: this package only names where espeak-ng's C sources come from.
