import glob

from setuptools import find_packages, setup

setup(
    name="nncf_bootstrapnas",
    version="0.1.0",
    description="BootstrapNAS on NNCF 3: automatic weight-sharing super-networks, training, search and OpenVINO deployment",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["nncf_bootstrapnas", "nncf_bootstrapnas.*"]),
    # The schemas in schemas/ are the single source of defaults; installed beside the package for non-editable installs.
    data_files=[("share/nncf_bootstrapnas/schemas", sorted(glob.glob("schemas/*.json")))],
    install_requires=[
        "torch>=2.4",
        "nncf>=3.4,<4",
        "openvino>=2024.4",
        "onnx>=1.16",
        "numpy>=1.24",
        "jsonschema>=4.18",
        "pymoo>=0.6.1,<0.7",
        "scikit-learn>=1.3",
        "scipy>=1.10",
        "rich>=13",
        "matplotlib>=3.7",
        "pillow>=9",
    ],
    extras_require={"test": ["pytest>=7.4", "pytest-xdist>=3.5", "hypothesis>=6.90", "ruff>=0.5"]},
    entry_points={"console_scripts": ["nncf-bootstrapnas=nncf_bootstrapnas.cli.main:main"]},
)
