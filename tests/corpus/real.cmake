# Real-corpus oracle: run fbl over ../shared/corpus/real and compare each
# mail with the expectations pinned in real-manifest.json. Skips (77) when
# the corpus is not present.
add_test(NAME corpus/real
  COMMAND ${FBL_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/check_real.py
          $<TARGET_FILE:fbl> ${FBL_CORPUS_DIR}
          ${CMAKE_CURRENT_SOURCE_DIR}/real-manifest.json)
set_tests_properties(corpus/real PROPERTIES SKIP_RETURN_CODE 77 LABELS corpus)
