# corpus/schema: every document fbl emits (golden samples and the shared real
# corpus, when present) validates against schema/report.schema.json.
add_test(NAME corpus/schema
         COMMAND ${FBL_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/validate_schema.py
                 --fbl $<TARGET_FILE:fbl>
                 --schema ${PROJECT_SOURCE_DIR}/schema/report.schema.json
                 --samples ${CMAKE_CURRENT_SOURCE_DIR}/samples
                 --corpus ${FBL_CORPUS_DIR})
set_tests_properties(corpus/schema PROPERTIES LABELS corpus)
